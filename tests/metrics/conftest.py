"""Seeded scored rows the metric tests share (one cached DataFrame per test run)."""

from __future__ import annotations

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F


def uniform(seed: int) -> F.Column:
    """A seeded, deterministic value in [0, 1) per `id` (spark.range's column)."""
    return (F.abs(F.hash(F.col("id"), F.lit(seed))) % 100_000) / 100_000.0


@pytest.fixture(scope="session")
def scored(spark: SparkSession) -> DataFrame:
    """4000 seeded rows, ~25% positives; scores rounded to 3 decimals so many tie."""
    return (
        spark.range(4000)
        .select((uniform(1) < 0.25).cast("int").alias("_label"), uniform(2).alias("noise"))
        .select("_label", F.round(0.3 * F.col("_label") + 0.7 * F.col("noise"), 3).alias("score"))
        .cache()
    )
