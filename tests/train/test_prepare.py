"""Frequency encodings (fitted on train in one aggregation, applied alike in training and scoring) and
negative down-sampling."""

from __future__ import annotations

from collections import Counter

import pytest
from lakeboost.train.prepare import (
    NULL_CATEGORY,
    apply_frequency_encodings,
    downsample_negatives,
    fit_frequency_encodings,
)
from lakeboost.train.splits import SPLIT
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from tests.helpers import spark_jobs

SCHEMA = "id int, country string, tier int, vip boolean"


def _jobs(spark: SparkSession, action) -> int:
    """Spark jobs `action()` runs."""
    return spark_jobs(spark, action)[1]


@pytest.fixture(scope="module")
def train(spark: SparkSession) -> DataFrame:
    countries = ["FR", "FR", "DE", None, "FR", "it's", "DE", None, "FR", "ES"]
    return spark.createDataFrame([(i, c, i % 3, i % 4 == 0) for i, c in enumerate(countries)], SCHEMA)


def test_frequencies_match_a_count_of_the_training_rows(train: DataFrame) -> None:
    encodings = fit_frequency_encodings(train, ("country", "tier", "vip"))
    rows = train.collect()
    for column in ("country", "tier", "vip"):
        # Spark's string cast, as scoring applies it: true/false, not Python's True/False.
        names = [NULL_CATEGORY if r[column] is None else str(r[column]).lower() if column == "vip" else str(r[column])
                 for r in rows]
        assert encodings[column] == {name: n / len(rows) for name, n in Counter(names).items()}
    assert fit_frequency_encodings(train, ()) == {}


def test_applying_replaces_categories_unseen_ones_by_zero_and_broadcasts_without_a_job(
        spark: SparkSession, train: DataFrame) -> None:
    encodings = fit_frequency_encodings(train, ("country", "tier", "vip"))
    new = spark.createDataFrame([(1, "FR", 0, True), (2, None, 2, False), (3, "US", 7, None), (4, "it's", 1, True)],
                                SCHEMA)
    encoded = apply_frequency_encodings(new, encodings)
    assert encoded.columns == new.columns
    got = {r.id: (r.country, r.tier, r.vip) for r in encoded.collect()}
    assert got == {1: (0.4, 0.4, 0.3), 2: (0.2, 0.3, 0.7), 3: (0.0, 0.0, 0.0), 4: (0.1, 0.3, 0.3)}
    assert _jobs(spark, encoded.collect) == 1  # the scan only: three lookups, no broadcast job
    assert encoded.schema["country"].dataType.typeName() == "double"


def test_a_large_table_is_applied_the_same(spark: SparkSession, monkeypatch: pytest.MonkeyPatch) -> None:
    from lakeboost.train import prepare

    train = spark.range(30).select(F.col("id").cast("int"), (F.col("id") % 7).cast("string").alias("country"),
                                   F.lit(1).alias("tier"), F.lit(True).alias("vip"))
    encodings = fit_frequency_encodings(train, ("country",))
    inline = {r.id: r.country for r in apply_frequency_encodings(train, encodings).collect()}
    monkeypatch.setattr(prepare, "INLINE_CATEGORIES", 3)  # the createDataFrame path
    assert {r.id: r.country for r in apply_frequency_encodings(train, encodings).collect()} == inline
    assert inline[0] == pytest.approx(5 / 30) and inline[6] == pytest.approx(4 / 30)


def _examples(spark: SparkSession) -> DataFrame:
    """2,000 examples under a two-column key: 11% positives in every split, splits 3:1:1, one null feature value."""
    return spark.range(2000).select(
        (F.col("id") % 7).cast("int").alias("shop"), F.format_string("O%05d", "id").alias("order"),
        (F.col("id") % 9 == 0).cast("int").alias("label"),
        F.element_at(F.array(*[F.lit(s) for s in ("train", "train", "train", "valid", "test")]),
                     (F.col("id") % 5 + 1).cast("int")).alias(SPLIT),
        F.when(F.col("id") != 3, F.col("id") / 7).alias("amount"))


def test_negative_down_sampling_is_seeded_keeps_positives_and_leaves_valid_and_test_alone(
        spark: SparkSession) -> None:
    examples = _examples(spark)
    key = ("shop", "order")
    is_train, positive = F.col(SPLIT) == "train", F.col("label") == 1

    sampled = downsample_negatives(examples, rate=0.25, label="label", seed=7, key=key).cache()

    # Validation and test rows are untouched, every training positive is kept.
    assertDataFrameEqual(sampled.filter(~is_train), examples.filter(~is_train))
    assertDataFrameEqual(sampled.filter(is_train & positive), examples.filter(is_train & positive))
    # A quarter of the training negatives.
    kept = sampled.filter(is_train & ~positive)
    negatives = examples.filter(is_train & ~positive).count()
    assert negatives == 1067 and 0.2 * negatives < kept.count() < 0.3 * negatives
    # Seeded on the key: the same rows from the same seed whatever the partitioning and row order
    # (a rand()-based sample would change with them); another seed keeps other rows.
    reshuffled = examples.repartition(5, "order").sortWithinPartitions(F.desc("order"))
    assertDataFrameEqual(downsample_negatives(reshuffled, rate=0.25, label="label", seed=7, key=key), sampled)
    other = downsample_negatives(examples, rate=0.25, label="label", seed=8, key=key).filter(is_train & ~positive)
    assert not other.exceptAll(kept).isEmpty()
    # A rate of 1 keeps everything (the same DataFrame).
    assert downsample_negatives(examples, rate=1.0, label="label", seed=7, key=key) is examples
    sampled.unpersist()
