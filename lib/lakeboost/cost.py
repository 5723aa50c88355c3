"""What a step cost: Spark's own task metrics for the stages it ran, priced from config.

Read from Spark's application status store (the data behind the Spark UI and its REST API,
kept even with the UI off): executor run and CPU time, bytes read/written, shuffle bytes, peak
execution memory, tasks. The store is reached through the JVM (lakeboost/borrowed/jvm.py);
without it, jobs, stages and tasks come from the public status tracker and the task metrics
are reported unknown (`task_metrics`). On Spark Connect the client sees neither (the server keeps
them): jobs, stages, tasks and task metrics stay 0 and `task_metrics` says they are unknown; the
memory GB-hours still come from the wall time and the server's conf. Cost = task core-hours x
price per core-hour + memory GB-hours (executor memory held for the wall time) x price per GB-hour.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from pyspark.sql import SparkSession

from lakeboost.borrowed import jvm
from lakeboost.config.cost import CostConfig
from lakeboost.spark.kind import is_connect
from lakeboost.spark.memory import parse_memory

CONNECT_UNKNOWN = ("unknown: Spark Connect exposes no status store or status tracker to its client; "
                   "jobs, stages, tasks and task metrics not counted (see the server's Spark UI)")


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
    # Where the executor times and bytes came from: Spark's status store (borrowed/jvm.py), or
    # "unknown: <why>" (they are then 0, and so are the core hours).
    task_metrics: str = "status store"
    stage_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        out = asdict(self)
        out.pop("stage_ids")
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in out.items()}


def allocated_memory_gb(spark: SparkSession) -> float:
    """Memory held while the step runs: the driver in local mode, executors x memory otherwise."""
    if is_connect(spark):
        return _connect_memory_gb(spark)
    sc = spark.sparkContext
    conf = sc.getConf()
    assert sc.master is not None  # a running SparkContext always has its master
    if sc.master.startswith("local"):
        return parse_memory(conf.get("spark.driver.memory", "1g")) / 2**30
    # The executors registered now (borrowed/jvm.py), else the configured count.
    executors = jvm.executor_count(spark) if jvm.available(spark) else int(conf.get("spark.executor.instances", "1"))
    return executors * parse_memory(conf.get("spark.executor.memory", "1g")) / 2**30


def _connect_memory_gb(spark: SparkSession) -> float:
    """`allocated_memory_gb` from the settings a Connect server shares with its clients."""
    conf = spark.conf
    if str(conf.get("spark.master", "local")).startswith("local"):
        return parse_memory(conf.get("spark.driver.memory", "1g") or "1g") / 2**30
    executors = int(conf.get("spark.executor.instances", "1") or "1")
    return executors * parse_memory(conf.get("spark.executor.memory", "1g") or "1g") / 2**30


class CostMeter:
    """`with CostMeter(spark, prices) as meter: ...` then `meter.report`."""

    def __init__(self, spark: SparkSession, prices: CostConfig | None = None) -> None:
        self.spark, self.prices = spark, prices or CostConfig()
        self.report = CostReport(currency=self.prices.currency)

    def __enter__(self) -> CostMeter:
        self._connect = is_connect(self.spark)
        self._store = jvm.StatusStore(self.spark) if not self._connect and jvm.available(self.spark) else None
        if self._connect:
            pass
        elif self._store is not None:
            self._last_stage, self._last_job = self._store.newest_stage_id(), self._store.newest_job_id()
        else:
            self._jobs_before = set(self.spark.sparkContext.statusTracker().getJobIdsForGroup())
        self._started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        report = self.report
        report.wall_seconds = time.monotonic() - self._started
        if self._connect:
            report.task_metrics = CONNECT_UNKNOWN
        elif self._store is not None:
            self._add_stage_metrics(self._store)
        else:
            self._count_from_status_tracker()
        report.core_hours = report.executor_run_seconds / 3600
        report.gb_hours = allocated_memory_gb(self.spark) * report.wall_seconds / 3600
        report.estimated_cost = report.core_hours * self.prices.core_hour + report.gb_hours * self.prices.gb_hour

    def _add_stage_metrics(self, store: jvm.StatusStore) -> None:
        report = self.report
        for stage in store.stages_after(self._last_stage):
            report.stage_ids.append(stage.stage_id)
            report.stages += 1
            report.tasks += stage.tasks
            report.executor_run_seconds += stage.run_seconds
            report.executor_cpu_seconds += stage.cpu_seconds
            report.input_bytes += stage.input_bytes
            report.output_bytes += stage.output_bytes
            report.shuffle_read_bytes += stage.shuffle_read_bytes
            report.shuffle_write_bytes += stage.shuffle_write_bytes
            report.peak_execution_memory_bytes = max(report.peak_execution_memory_bytes,
                                                     stage.peak_execution_memory_bytes)
        report.jobs = store.jobs_after(self._last_job)

    def _count_from_status_tracker(self) -> None:
        """Jobs, stages and tasks from the public status tracker (jobs outside any job group, the
        ones it lists); its task metrics are not public, so the core hours stay unknown."""
        tracker = self.spark.sparkContext.statusTracker()
        report = self.report
        jobs = [tracker.getJobInfo(j) for j in set(tracker.getJobIdsForGroup()) - self._jobs_before]
        stages = [tracker.getStageInfo(s) for job in jobs if job is not None for s in job.stageIds]
        report.jobs = len(jobs)
        report.stage_ids = sorted(s.stageId for s in stages if s is not None)
        report.stages = len(report.stage_ids)
        report.tasks = sum(s.numCompletedTasks + s.numFailedTasks for s in stages if s is not None)
        report.task_metrics = "unknown: " + jvm.choose(self.spark).reason
