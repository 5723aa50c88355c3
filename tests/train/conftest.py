"""Seeded synthetic training sets with a learnable signal (xxhash-based, partition independent)."""

from __future__ import annotations

import datetime as dt

import pytest
from lakeboost.config.dataset import DatasetConfig
from lakeboost.features.training_set import TrainingSet
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

SYNTHETIC_DATASET = DatasetConfig.model_validate({
    "events": "silver.synthetic", "key": "txn_id", "event_time": "event_time", "date_column": "event_date",
    "label": {"kind": "value", "column": "label", "expr": "outcome", "available_at": "event_time"}})


def uniform(seed: str):
    return (F.abs(F.xxhash64(F.lit(seed), F.col("id"))) % 100_000) / 100_000.0


def synthetic(spark: SparkSession, rows: int = 6000, positive_rate_logit: float = -4.2,
              kind: str = "binary") -> TrainingSet:
    base = spark.range(rows).select(
        F.format_string("T%06d", F.col("id")).alias("txn_id"),
        (F.col("id") % 200).alias("customer_id"),
        F.timestamp_seconds(F.lit(1_767_225_600) + F.col("id") * 600).alias("event_time"),
        uniform("f1").alias("f1"), uniform("f2").alias("f2"), uniform("noise").alias("noise"),
        F.element_at(F.array(F.lit("pos"), F.lit("online"), F.lit("atm")),
                     (F.abs(F.xxhash64(F.lit("c"), F.col("id"))) % 3 + 1).cast("int")).alias("channel"),
    )
    if kind == "binary":
        online = F.when(F.col("channel") == "online", 1.0).otherwise(0.0)
        logit = F.lit(positive_rate_logit) + 5.0 * F.col("f1") + online
        label = (F.col("noise") < 1 / (1 + F.exp(-logit))).cast("int")
    elif kind == "multiclass":
        label = F.when(F.col("f1") + 0.2 * F.col("noise") < 0.4, 0).when(F.col("f1") < 0.7, 1).otherwise(2)
    else:
        label = 10.0 * F.col("f1") + 2.0 * F.col("f2") + F.col("noise")
    df = base.withColumn("label", label)
    return TrainingSet(df, {"gold.synthetic": 0}, dt.datetime(2026, 3, 1), ("f1", "f2", "channel"), ("channel",),
                       SYNTHETIC_DATASET)


@pytest.fixture(scope="session")
def binary_set(spark: SparkSession) -> TrainingSet:
    return synthetic(spark)
