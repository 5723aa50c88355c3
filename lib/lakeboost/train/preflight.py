"""Checks before a distributed fit starts: refuse clearly instead of hanging or running out of memory.

* barrier mode needs all `num_workers` tasks running at once: enough task slots, and
  dynamic allocation off (executors released mid-stage would stall the barrier);
* the training matrix per worker (rows x features x 4 bytes, about 5 copies at the worker's
  peak) must fit in the share of executor memory allowed;
* the workers' Python processes must be able to run the OpenMP threads the fit gives them
  (`check_worker_threads`: one small Spark job, once per session and setting).

On a classic session the resources come from the SparkContext (its conf, and the task slots
through the JVM where borrowed/jvm.py may); over Spark Connect there is no SparkContext, and they
come from the server's conf as `spark.conf.get` answers it: the master, executor instances and
cores, spark.task.cpus, memory and dynamic allocation. Where those do not tell the slots (a
cluster whose executors are not fixed in its conf), the slot check is skipped with a warning.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

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


# (application id, threads, workers) already checked by check_worker_threads in this process.
_THREADS_CHECKED: set[tuple[str, int, int]] = set()


def openmp_seen(threads: int | None) -> dict[str, int]:
    """What OpenMP lets this process run inside `worker_files.openmp_threads(threads)`, as xgboost
    counts it: the OpenMP runtimes' thread count (OMP_NUM_THREADS, as raised), their thread limit
    (OMP_THREAD_LIMIT, which nothing raises) and the processors they may use."""
    import ctypes

    import xgboost  # noqa: F401  (loads xgboost's OpenMP runtime)
    from threadpoolctl import threadpool_info

    from lakeboost.train.worker_files import openmp_threads

    with openmp_threads(threads):
        runtimes = [info for info in threadpool_info() if info["user_api"] == "openmp"]
        if not runtimes:
            return {"threads": 1, "limit": 1, "procs": 1}
        libraries = [ctypes.CDLL(info["filepath"]) for info in runtimes]
        return {"threads": min(int(info["num_threads"]) for info in runtimes),
                "limit": min(int(lib.omp_get_thread_limit()) for lib in libraries),
                "procs": min(int(lib.omp_get_num_procs()) for lib in libraries)}


def _probe(threads: int | None) -> Any:
    def probe(batches: Any) -> Any:
        import pandas as pd  # on the worker

        for _ in batches:
            pass
        yield pd.DataFrame([openmp_seen(threads)])

    return probe


def check_worker_threads(spark: SparkSession, *, threads: int | None, num_workers: int) -> None:
    """Raise TrainingError when the Python workers of `num_workers` tasks cannot run the fit's OpenMP
    threads: `threads` (training.model.worker_threads, or a local master's share of its slots), else
    spark.task.cpus (xgboost.spark's nthread). One Spark job of `num_workers` one-row tasks (about
    a second once the Python workers run), then remembered for the session."""
    task_cpus = max(1, int(spark_conf(spark, "spark.task.cpus", "1")))
    expected = threads or task_cpus
    key = (spark.sparkContext.applicationId, expected, num_workers)
    if key in _THREADS_CHECKED:
        return
    started = time.monotonic()
    seen = (spark.range(0, num_workers, 1, numPartitions=num_workers)
            .mapInPandas(_probe(threads), "threads int, `limit` int, procs int")
            .collect())  # one row per task
    log.info("OpenMP on the workers checked in %.1fs: %s", time.monotonic() - started,
             [row.asDict() for row in seen])
    for row in seen:
        effective = min(row["threads"], row["limit"], row["procs"])
        if effective == expected:
            continue
        if row["limit"] < expected:
            why, fix = (f"OMP_THREAD_LIMIT={row['limit']} in the workers' environment",
                        "remove OMP_THREAD_LIMIT from spark.executorEnv (or the executors' environment)")
        elif row["procs"] < expected:
            why, fix = (f"the workers may use {row['procs']} processor(s)",
                        f"set training.model.worker_threads to at most {row['procs']}")
        elif threads:
            why, fix = (f"OpenMP allows {row['threads']} in the Python workers (OMP_NUM_THREADS, not raised: is "
                        "threadpoolctl installed on the executors?)",
                        f"install threadpoolctl on the executors or set training.model.worker_threads to "
                        f"{row['threads']}")
        else:
            why, fix = (f"OpenMP allows {row['threads']} in the Python workers (OMP_NUM_THREADS)",
                        f"set spark.task.cpus to {row['threads']} or remove OMP_NUM_THREADS from spark.executorEnv")
        setting = "training.model.worker_threads" if threads else "spark.task.cpus"
        raise TrainingError(f"the xgboost workers would train with {effective} OpenMP thread(s), not the "
                            f"{expected} the fit gives them ({setting}={expected}): {why}. Fix: {fix}")
    _THREADS_CHECKED.add(key)
