"""Frequency encodings as the model applies them: categories replaced by their training share,
unseen ones by zero, broadcast without a job, the same from a large table."""

from __future__ import annotations

import pytest
from lakeboost.model import encodings as encodings_module
from lakeboost.model.encodings import apply_encodings
from lakeboost.train.prepare import fit_frequency_encodings
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from tests.helpers import spark_jobs

SCHEMA = "id int, country string, tier int, vip boolean"


@pytest.fixture(scope="module")
def train(spark: SparkSession) -> DataFrame:
    countries = ["FR", "FR", "DE", None, "FR", "it's", "DE", None, "FR", "ES"]
    return spark.createDataFrame([(i, c, i % 3, i % 4 == 0) for i, c in enumerate(countries)], SCHEMA)


def test_applying_replaces_categories_unseen_ones_by_zero_and_broadcasts_without_a_job(
        spark: SparkSession, train: DataFrame) -> None:
    encodings = fit_frequency_encodings(train, ("country", "tier", "vip"))
    new = spark.createDataFrame([(1, "FR", 0, True), (2, None, 2, False), (3, "US", 7, None), (4, "it's", 1, True)],
                                SCHEMA)
    encoded = apply_encodings(new, encodings)
    assert encoded.columns == new.columns
    got = {r.id: (r.country, r.tier, r.vip) for r in encoded.collect()}
    assert got == {1: (0.4, 0.4, 0.3), 2: (0.2, 0.3, 0.7), 3: (0.0, 0.0, 0.0), 4: (0.1, 0.3, 0.3)}
    assert spark_jobs(spark, encoded.collect)[1] == 1  # the scan only: three lookups, no broadcast job
    assert encoded.schema["country"].dataType.typeName() == "double"


def test_a_large_table_is_applied_the_same(spark: SparkSession, monkeypatch: pytest.MonkeyPatch) -> None:
    train = spark.range(30).select(F.col("id").cast("int"), (F.col("id") % 7).cast("string").alias("country"),
                                   F.lit(1).alias("tier"), F.lit(True).alias("vip"))
    encodings = fit_frequency_encodings(train, ("country",))
    inline = {r.id: r.country for r in apply_encodings(train, encodings).collect()}
    monkeypatch.setattr(encodings_module, "INLINE_CATEGORIES", 3)  # the createDataFrame path
    assert {r.id: r.country for r in apply_encodings(train, encodings).collect()} == inline
    assert inline[0] == pytest.approx(5 / 30) and inline[6] == pytest.approx(4 / 30)
