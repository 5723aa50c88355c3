"""Every worker partition gets both classes and validation rows; class weights; the pre-flight."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality
from lakeboost.errors import TrainingError
from lakeboost.train.preflight import ClusterResources, cluster_resources, preflight
from lakeboost.train.prepare import (
    DEAL_BUCKETS,
    VALID,
    WORKER,
    layout_for_workers,
    layout_problems,
    partition_counts,
    partition_keys,
    scale_pos_weight,
)
from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F


def test_every_worker_gets_both_classes_and_validation_rows_at_two_percent(spark: SparkSession) -> None:
    # 1000 rows, 20 positives (2%), 100 validation rows, dealt to 4 workers.
    df = spark.range(1000).select(
        F.format_string("K%d", "id").alias("txn_id"), (F.col("id") % 50 == 0).cast("int").alias("label"),
        (F.col("id") % 10 == 3).alias(VALID))
    laid = layout_for_workers(df, num_workers=4, label="label", key=("txn_id",))
    per_worker = laid.groupBy(F.spark_partition_id().alias("p")).agg(
        F.sum("label").alias("pos"), F.sum(F.col(VALID).cast("int")).alias("valid"), F.count("*").alias("n")).collect()
    assert len(per_worker) == 4
    assert all(r.pos >= 4 and r.valid >= 20 for r in per_worker)
    assert layout_problems(partition_counts(laid, label="label"), num_workers=4, classes=2) == []
    one_sided = laid.filter((F.spark_partition_id() != 1) | (F.col("label") == 0))
    assert layout_problems(partition_counts(one_sided, label="label"), num_workers=4, classes=2) == [
        f"worker partition 1: 1 class(es), {per_worker_valid(laid, 1)} validation rows"]


def test_class_weight_comes_from_the_training_split_and_needs_both_classes() -> None:
    assert scale_pos_weight({0: 980, 1: 20}) == 49.0
    with pytest.raises(TrainingError, match="0 positive and 100 negative rows"):
        scale_pos_weight({0: 100})


def test_preflight_refuses_too_many_workers_and_too_little_memory(spark: SparkSession) -> None:
    resources = cluster_resources(spark)
    assert resources.task_slots == 2 and not resources.dynamic_allocation
    with pytest.raises(TrainingError, match=r"num_workers=8 but the cluster has 2 concurrent task slot"):
        preflight(resources, num_workers=8, rows=1000, features=10, max_memory_fraction=0.5)
    small = ClusterResources(task_slots=2, executor_memory_bytes=512 * 2**20, dynamic_allocation=False)
    with pytest.raises(TrainingError, match=r"needs about .* GiB per worker .* Use more workers, fewer features"):
        preflight(small, num_workers=2, rows=50_000_000, features=40, max_memory_fraction=0.5)
    dynamic = ClusterResources(task_slots=8, executor_memory_bytes=2**34, dynamic_allocation=True)
    with pytest.raises(TrainingError, match="dynamicAllocation"):
        preflight(dynamic, num_workers=2, rows=10, features=1, max_memory_fraction=0.5)


def test_layout_is_the_round_robin_deal_of_a_whole_stratum_without_sorting_it_in_one_task(
        spark: SparkSession) -> None:
    # 5000 rows, 3% positives, 15% validation, 3 workers: the bucketed deal must equal the deal
    # by one window over each whole stratum (the single-task sort it replaces), row by row.
    df = spark.range(5000).select(
        F.format_string("K%d", "id").alias("txn_id"), (F.xxhash64("id") % 33 == 0).cast("int").alias("label"),
        (F.col("id") % 7 == 1).alias(VALID))
    laid = layout_for_workers(df, num_workers=3, label="label", key=("txn_id",))

    keys = F.array(*[F.lit(k).cast("bigint") for k in partition_keys(spark, 3)])
    whole = Window.partitionBy("label", VALID).orderBy(
        F.pmod(F.xxhash64("txn_id", F.lit(29)), F.lit(DEAL_BUCKETS)), F.xxhash64("txn_id"), "txn_id")
    expected = df.withColumn(WORKER, F.element_at(keys, ((F.row_number().over(whole) - 1) % 3 + 1).cast("int")))
    assert_df_equality(laid.select("txn_id", WORKER), expected.select("txn_id", WORKER), ignore_row_order=True,
                       ignore_nullable=True)
    # Balanced per stratum (counts differ by at most one), and the numbering's window is
    # partitioned by the bucket too: no single task holds a stratum.
    per = laid.groupBy("label", VALID, F.spark_partition_id().alias("p")).count().collect()
    for stratum in {(r.label, r[VALID]) for r in per}:
        counts = [r["count"] for r in per if (r.label, r[VALID]) == stratum]
        assert len(counts) == 3 and max(counts) - min(counts) <= 1, (stratum, counts)
    plan = laid._jdf.queryExecution().executedPlan().toString()
    windows = [line for line in plan.splitlines() if "Window [" in line]
    assert windows and all("__deal_bucket" in line.split("windowspecdefinition(", 1)[1] for line in windows)


def per_worker_valid(df, partition: int) -> int:
    return df.filter(F.spark_partition_id() == partition).filter(F.col(VALID)).count()
