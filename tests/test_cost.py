"""The cost report reads Spark's own task metrics for exactly the stages a step ran."""

from __future__ import annotations

import operator

import pytest
from lakeboost.config.cost import CostConfig
from lakeboost.cost import CostMeter
from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def test_cost_report_matches_sparks_stage_metrics(spark: SparkSession) -> None:
    tracker = spark.sparkContext.statusTracker()
    spark.range(10).count()  # stages before the meter must not count
    with CostMeter(spark) as earlier:
        spark.range(10).count()
    jobs_before = set(tracker.getJobIdsForGroup())
    with CostMeter(spark, CostConfig(core_hour=1.0, gb_hour=0.0)) as meter:
        spark.range(200_000).select((F.col("id") % 13).alias("k")).groupBy("k").count().collect()

    report = meter.report
    # Exactly the jobs and stages run inside the meter, whatever ran before it.
    new_jobs = set(tracker.getJobIdsForGroup()) - jobs_before
    assert report.jobs == len(new_jobs) >= 1 and earlier.report.jobs >= 1
    assert sorted(report.stage_ids) == sorted(s for j in new_jobs for s in tracker.getJobInfo(j).stageIds)
    assert not set(report.stage_ids) & set(earlier.report.stage_ids)
    assert report.stages == len(report.stage_ids) >= 1 and report.tasks >= report.stages
    assert report.shuffle_write_bytes > 0 and report.executor_run_seconds > 0
    assert report.executor_cpu_seconds > 0
    assert report.core_hours == report.executor_run_seconds / 3600
    assert abs(report.estimated_cost - report.core_hours) < 1e-12  # gb_hour priced at 0
    assert set(report.as_dict()) >= {"tasks", "wall_seconds", "executor_run_seconds", "executor_cpu_seconds",
                                     "input_bytes", "output_bytes", "shuffle_read_bytes", "shuffle_write_bytes",
                                     "peak_execution_memory_bytes", "core_hours", "gb_hours", "estimated_cost"}


def test_cost_report_counts_the_tasks_a_job_of_known_partitions_ran(spark: SparkSession) -> None:
    """Tasks, stages and jobs against what the job's definition fixes (an RDD job: no adaptive
    coalescing), not against the status store the meter itself reads."""
    sc = spark.sparkContext
    sc.parallelize(range(10), 2).count()  # a job just before the meter must not count
    with CostMeter(spark) as meter:
        pairs = sc.parallelize(range(1000), 3).map(lambda x: (x % 13, 1))
        counts = dict(pairs.reduceByKey(operator.add, 4).collect())

    assert counts == {k: len(range(k, 1000, 13)) for k in range(13)}
    report = meter.report
    # One job of two stages: 3 map tasks writing the shuffle, 4 reduce tasks reading it.
    assert (report.jobs, report.stages, report.tasks) == (1, 2, 7)
    assert report.shuffle_write_bytes > 0 and report.shuffle_read_bytes == report.shuffle_write_bytes


def test_over_spark_connect_the_task_metrics_are_reported_unknown(connect_spark: SparkSession) -> None:
    from lakeboost.cost import CONNECT_UNKNOWN

    with CostMeter(connect_spark) as meter:
        assert connect_spark.range(1000).count() == 1000

    report = meter.report
    assert report.task_metrics == CONNECT_UNKNOWN
    assert (report.jobs, report.stages, report.tasks, report.core_hours) == (0, 0, 0, 0.0)
    # The memory held still counts: the server's driver memory (tests/conftest.py) for the wall time.
    assert report.gb_hours == pytest.approx(3 * report.wall_seconds / 3600)
