"""Frequency encodings fitted on train in one aggregation, and negative down-sampling."""

from __future__ import annotations

from collections import Counter

import pytest
from lakeboost.features.splits import SPLIT
from lakeboost.model.encodings import NULL_CATEGORY
from lakeboost.train.prepare import downsample_negatives, fit_frequency_encodings
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
