"""Splits never mix time or entities, are stratified when random, and cut at exact quantiles."""

from __future__ import annotations

import math

import pytest
from lakeboost.config.training import SplitConfig
from lakeboost.features.splits import SPLIT, assign_splits, exact_quantiles
from lakeboost.features.training_set import TrainingSet
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from tests.train.conftest import synthetic


@pytest.fixture(scope="module")
def binary_set(spark: SparkSession) -> TrainingSet:
    return synthetic(spark)


def test_time_split_puts_no_test_row_before_any_training_row(binary_set: TrainingSet) -> None:
    df = assign_splits(binary_set.df, cfg=SplitConfig(), label="label", key=("txn_id",), time_column="event_time")
    bounds = {r[SPLIT]: r for r in df.groupBy(SPLIT).agg(F.min("event_time").alias("lo"),
                                                         F.max("event_time").alias("hi"), F.count("*").alias("n"))
              .collect()}
    assert bounds["train"].hi < bounds["valid"].lo <= bounds["valid"].hi < bounds["test"].lo
    assert abs(bounds["test"].n / 6000 - 0.2) < 0.02


def test_group_split_keeps_each_entity_in_one_split(binary_set: TrainingSet) -> None:
    df = assign_splits(binary_set.df, cfg=SplitConfig(kind="group", group_column="customer_id"), label="label",
                       key=("txn_id",), time_column="event_time")
    assert df.groupBy("customer_id").agg(F.countDistinct(SPLIT).alias("n")).filter("n > 1").count() == 0
    assert {r[SPLIT] for r in df.select(SPLIT).distinct().collect()} == {"train", "valid", "test"}


def test_random_split_is_stratified(binary_set: TrainingSet) -> None:
    df = assign_splits(binary_set.df, cfg=SplitConfig(kind="random"), label="label", key=("txn_id",),
                       time_column="event_time")
    rates = {r[SPLIT]: r.rate for r in df.groupBy(SPLIT).agg(F.avg("label").alias("rate")).collect()}
    assert max(rates.values()) - min(rates.values()) < 0.01


def test_exact_quantiles_are_the_ranked_values_whatever_the_partitioning(spark: SparkSession) -> None:
    df = spark.range(20000).select((F.rand(seed=11) * 1e6).cast("long").cast("double").alias("t"))
    values = sorted(r.t for r in df.collect())
    probabilities = [0.0, 0.13, 0.65, 0.8, 1.0]
    expected = [values[max(math.ceil(p * len(values)), 1) - 1] for p in probabilities]
    for layout in (df, df.repartition(7), df.coalesce(1), df.orderBy(F.desc("t"))):
        assert exact_quantiles(layout, "t", probabilities) == expected
