"""Checks before a distributed fit starts: refuse clearly instead of hanging or running out of memory.

* barrier mode needs all `num_workers` tasks running at once: enough task slots, and
  dynamic allocation off (executors released mid-stage would stall the barrier);
* the training matrix per worker (rows x features x 4 bytes, about 5 copies at the worker's
  peak) must fit in the share of executor memory allowed.

On a classic session the resources come from the SparkContext (its conf, and the task slots
through the JVM where borrowed/jvm.py may); over Spark Connect there is no SparkContext, and they
come from the server's conf as `spark.conf.get` answers it: the master, executor instances and
cores, spark.task.cpus, memory and dynamic allocation. Where those do not tell the slots (a
cluster whose executors are not fixed in its conf), the slot check is skipped with a warning.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from pyspark.sql import SparkSession

from lakeboost.borrowed import jvm
from lakeboost.errors import TrainingError
from lakeboost.spark.kind import is_connect
from lakeboost.spark.memory import parse_memory

log = logging.getLogger(__name__)

BYTES_PER_VALUE = 4  # float32 in the DMatrix
# The worker's peak over its float32 matrix: the Arrow table read from its file, the float32
# arrays of both splits, the quantile matrices, the allocator's slack. Measured at 10M demo rows
# (bench/bench_train.py: 1.6M rows x 56 columns per worker): ~4.6x, Python's own ~0.3 GiB included.
COPIES_WHILE_BUILDING = 5


@dataclass(frozen=True)
class ClusterResources:
    task_slots: int | None  # None: not told by what the session exposes (Connect, see module doc)
    executor_memory_bytes: int
    dynamic_allocation: bool


def spark_conf(spark: SparkSession, key: str, default: str) -> str:
    """A Spark conf value of the session's application (the server's over Connect)."""
    if is_connect(spark):
        return spark.conf.get(key, default) or default
    return spark.sparkContext.getConf().get(key, default) or default


def master_of(spark: SparkSession) -> str:
    """The session's master URL ("local[2]", "spark://...", ...; "" when the server does not say)."""
    if is_connect(spark):
        return spark_conf(spark, "spark.master", "")
    return spark.sparkContext.master or ""


def _local_cores(master: str) -> int | None:
    """The cores of a local master ("local" 1, "local[4]" 4, "local[*]" this machine's), else None."""
    import os

    match = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\s*\d+)?\])?", master)
    if not match:
        return None
    cores = match.group(1)
    if cores is None:
        return 1
    return os.cpu_count() or 1 if cores == "*" else int(cores)


def connect_resources(spark: SparkSession) -> ClusterResources:
    """ClusterResources over Spark Connect, from the server's conf (spark.conf.get)."""
    master = master_of(spark)
    task_cpus = max(1, int(spark_conf(spark, "spark.task.cpus", "1")))
    cores = _local_cores(master)
    if cores is None:
        instances, per_executor = spark_conf(spark, "spark.executor.instances", ""), \
            spark_conf(spark, "spark.executor.cores", "")
        cores = int(instances) * int(per_executor) if instances.isdigit() and per_executor.isdigit() else None
    memory_key = "spark.driver.memory" if master.startswith("local") else "spark.executor.memory"
    return ClusterResources(
        task_slots=None if cores is None else cores // task_cpus,
        executor_memory_bytes=parse_memory(spark_conf(spark, memory_key, "1g")),
        dynamic_allocation=spark_conf(spark, "spark.dynamicAllocation.enabled", "false").lower() == "true",
    )


def cluster_resources(spark: SparkSession) -> ClusterResources:
    if is_connect(spark):
        return connect_resources(spark)
    sc = spark.sparkContext
    conf = sc.getConf()
    assert sc.master is not None  # a running SparkContext always has its master
    local = sc.master.startswith("local")
    memory_key = "spark.driver.memory" if local else "spark.executor.memory"
    # Concurrent task slots, counted the way xgboost.spark counts them (default profile; through
    # the JVM, borrowed/jvm.py), else from the public default parallelism.
    slots = jvm.max_concurrent_tasks(spark) if jvm.available(spark) else \
        sc.defaultParallelism // max(1, int(conf.get("spark.task.cpus", "1")))
    return ClusterResources(
        task_slots=int(slots),
        executor_memory_bytes=parse_memory(conf.get(memory_key, "1g")),
        dynamic_allocation=conf.get("spark.dynamicAllocation.enabled", "false").lower() == "true",
    )


def estimated_bytes_per_worker(rows: int, features: int, workers: int) -> int:
    return rows * (features + 2) * BYTES_PER_VALUE * COPIES_WHILE_BUILDING // max(workers, 1)


def check_barrier(resources: ClusterResources, *, num_workers: int) -> None:
    """Raise TrainingError when a barrier stage of `num_workers` tasks could not start on `resources`.

    Needs no data: callers check it before any Spark job or MLflow run (the train and tune steps,
    train_model), so a fit that cannot be scheduled costs nothing and leaves no failed run behind.
    """
    if resources.dynamic_allocation:
        raise TrainingError(
            "spark.dynamicAllocation.enabled is true: xgboost.spark trains in a barrier stage, which "
            "needs its executors for the whole fit; set spark.dynamicAllocation.enabled=false for training")
    if resources.task_slots is None:
        log.warning("the cluster's task slots are unknown over Spark Connect (spark.executor.instances and "
                    "spark.executor.cores are not in its conf): a barrier stage of %d workers waits until that "
                    "many tasks can run at once", num_workers)
        return
    if num_workers > resources.task_slots:
        raise TrainingError(
            f"training.model.num_workers={num_workers} but the cluster has {resources.task_slots} concurrent "
            f"task slot(s); a barrier stage cannot start until all workers run at once. Lower num_workers to "
            f"at most {resources.task_slots} or add executors/cores")


def preflight(resources: ClusterResources, *, num_workers: int, rows: int, features: int,
              max_memory_fraction: float) -> int:
    """Return the estimated bytes per worker, or raise TrainingError saying what to change."""
    check_barrier(resources, num_workers=num_workers)
    needed = estimated_bytes_per_worker(rows, features, num_workers)
    allowed = int(resources.executor_memory_bytes * max_memory_fraction)
    if needed > allowed:
        raise TrainingError(
            f"the training matrix ({rows} rows x {features} features) needs about {needed / 2**30:.1f} GiB per "
            f"worker with {num_workers} workers, more than the {allowed / 2**30:.1f} GiB allowed "
            f"({max_memory_fraction:.0%} of executor memory). Use more workers, fewer features, "
            "training.imbalance.negative_sample_rate < 1, or larger executors")
    return needed
