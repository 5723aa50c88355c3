"""What a step cost: Spark's own task metrics for the stages it ran, priced from config.

Read from Spark's application status store (the data behind the Spark UI and its REST API,
kept even with the UI off): executor run and CPU time, bytes read/written, shuffle bytes, peak
execution memory, tasks. Cost = task core-hours x price per core-hour + memory GB-hours
(executor memory held for the wall time) x price per GB-hour.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from pyspark.sql import SparkSession

from lakeboost.config.cost import CostConfig
from lakeboost.spark.memory import parse_memory


@dataclass
class CostReport:
    jobs: int = 0
    stages: int = 0
    tasks: int = 0
    wall_seconds: float = 0.0
    executor_run_seconds: float = 0.0
    executor_cpu_seconds: float = 0.0
    input_bytes: int = 0
    output_bytes: int = 0
    shuffle_read_bytes: int = 0
    shuffle_write_bytes: int = 0
    peak_execution_memory_bytes: int = 0
    core_hours: float = 0.0
    gb_hours: float = 0.0
    estimated_cost: float = 0.0
    currency: str = "USD"
    stage_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        out = asdict(self)
        out.pop("stage_ids")
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in out.items()}


def _stages(spark: SparkSession):
    """The status store's stages (all attempts), newest first, as a Scala Seq."""
    sc = spark.sparkContext
    jvm, gateway = sc._jvm, sc._gateway
    assert jvm is not None and gateway is not None  # set while a SparkContext is running
    # Events reach the status store asynchronously: let the listener bus drain first.
    sc._jsc.sc().listenerBus().waitUntilEmpty(5000)
    return sc._jsc.sc().statusStore().stageList(
        jvm.java.util.ArrayList(), False, False, gateway.new_array(jvm.double, 0), jvm.java.util.ArrayList())


def _jobs(spark: SparkSession):
    """The status store's jobs, newest first, as a Scala Seq (read after _stages, which drains
    the listener bus)."""
    sc = spark.sparkContext
    assert sc._jvm is not None
    return sc._jsc.sc().statusStore().jobsList(sc._jvm.java.util.ArrayList())


def _newer_than(newest_first, last_seen: int, ident: Callable[[Any], int]) -> list:
    """The items of a newest-first status-store Seq whose id is above `last_seen`. Ids only grow,
    so the walk stops at the first older item: each item is a py4j call, and walking the whole
    history at every step cost 2 s of the 20k demo's pipeline, more the longer a session runs."""
    found, iterator = [], newest_first.iterator()
    while iterator.hasNext():
        item = iterator.next()
        if ident(item) <= last_seen:
            break
        found.append(item)
    return found


def _newest(newest_first, ident: Callable[[Any], int]) -> int:
    return ident(newest_first.head()) if newest_first.nonEmpty() else -1


def _stage_id(stage: Any) -> int:
    return int(stage.stageId())


def _job_id(job: Any) -> int:
    return int(job.jobId())


def allocated_memory_gb(spark: SparkSession) -> float:
    """Memory held while the step runs: the driver in local mode, executors x memory otherwise."""
    sc = spark.sparkContext
    conf = sc.getConf()
    assert sc.master is not None  # a running SparkContext always has its master
    if sc.master.startswith("local"):
        return parse_memory(conf.get("spark.driver.memory", "1g")) / 2**30
    executors = max(1, sc._jsc.sc().getExecutorMemoryStatus().size() - 1)  # minus the driver
    return executors * parse_memory(conf.get("spark.executor.memory", "1g")) / 2**30


class CostMeter:
    """`with CostMeter(spark, prices) as meter: ...` then `meter.report`."""

    def __init__(self, spark: SparkSession, prices: CostConfig | None = None) -> None:
        self.spark, self.prices = spark, prices or CostConfig()
        self.report = CostReport(currency=self.prices.currency)

    def __enter__(self) -> CostMeter:
        self._last_stage = _newest(_stages(self.spark), _stage_id)
        self._last_job = _newest(_jobs(self.spark), _job_id)
        self._started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        report = self.report
        report.wall_seconds = time.monotonic() - self._started
        for stage in reversed(_newer_than(_stages(self.spark), self._last_stage, _stage_id)):
            report.stage_ids.append(int(stage.stageId()))
            report.stages += 1
            report.tasks += int(stage.numCompleteTasks()) + int(stage.numFailedTasks())
            report.executor_run_seconds += stage.executorRunTime() / 1000
            report.executor_cpu_seconds += stage.executorCpuTime() / 1e9
            report.input_bytes += int(stage.inputBytes())
            report.output_bytes += int(stage.outputBytes())
            report.shuffle_read_bytes += int(stage.shuffleReadBytes())
            report.shuffle_write_bytes += int(stage.shuffleWriteBytes())
            report.peak_execution_memory_bytes = max(report.peak_execution_memory_bytes,
                                                     int(stage.peakExecutionMemory()))
        report.jobs = len(_newer_than(_jobs(self.spark), self._last_job, _job_id))
        report.core_hours = report.executor_run_seconds / 3600
        report.gb_hours = allocated_memory_gb(self.spark) * report.wall_seconds / 3600
        report.estimated_cost = report.core_hours * self.prices.core_hour + report.gb_hours * self.prices.gb_hour
