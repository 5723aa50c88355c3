"""Every call into the JVM through py4j, behind a version guard.

What each buys, and the public path its caller takes without it (`available(spark)` false:
pyspark outside `TESTED`, Spark Connect, a session without the private handles, or
`LAKEBOOST_BORROWED=off`):

- Spark's status store (`StatusStore`): every stage's task metrics (run and CPU time, bytes,
  shuffle, peak memory), the data behind the Spark UI, kept with the UI off. Without it the cost
  meter counts jobs, stages and tasks through `sparkContext.statusTracker()` and reports the
  task metrics as unknown (no public Python API has them with the UI off).
- `executor_count`, `max_concurrent_tasks`: the executors and task slots as xgboost.spark itself
  counts them. Without: `spark.executor.instances` and `defaultParallelism // spark.task.cpus`.
- Hadoop's FileSystem (`hadoop_*`): s3a://, abfss://, dbfs:/ and local paths with the session's
  credentials. Without: spark/fs.py's pyarrow / Python file system helpers (local paths and
  what pyarrow opens; none for dbfs:/ or abfss:// credentials held only in Spark's config).
- MLlib's `BinaryClassificationMetrics` over a DataFrame (`exact_binary_aucs`): both exact AUCs
  from one sort, no row through Python. Without: BinaryClassificationEvaluator(numBins=0), one
  sort per metric, the same areas.
- `release_local_checkpoint`: frees the blocks of a DataFrame kept by `localCheckpoint` now,
  not at the JVM's next garbage collection. Without: they are freed then.
- `java_causes`: a Java exception's cause chain (class names, messages). Without: the Python
  exception's own message and class.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from lakeboost.borrowed import PathChoice, TestedRange, announce, outside, switched_off

TESTED = (TestedRange("pyspark", (4, 2), (4, 3)),)
NEED = "JVM access"


def available(spark: SparkSession | None = None) -> bool:
    """Whether the borrowed JVM calls may be used (for `spark`, when given); logged once per answer."""
    return choose(spark).borrowed


def choose(spark: SparkSession | None = None, *, versions: dict[str, str] | None = None) -> PathChoice:
    """The path JVM needs take (see the module doc); `versions` stands in for the installed ones (tests)."""
    return _announced(_choice(spark, versions))


@functools.lru_cache(maxsize=16)
def _announced(choice: PathChoice) -> PathChoice:
    return announce(NEED, choice)


def _choice(spark: SparkSession | None, versions: dict[str, str] | None) -> PathChoice:
    if switched_off():
        return PathChoice(False, "LAKEBOOST_BORROWED=off")
    why = outside(TESTED, versions)
    if why:
        return PathChoice(False, why)
    if spark is not None:
        try:
            sc = spark.sparkContext
        except Exception:  # noqa: BLE001 - Spark Connect has no SparkContext
            return PathChoice(False, "Spark Connect: no JVM in this process")
        if getattr(sc, "_jvm", None) is None or getattr(sc, "_jsc", None) is None:
            return PathChoice(False, "the SparkContext has no py4j gateway")
    return PathChoice(True, f"{' and '.join(str(t) for t in TESTED)} tested")


# --- Hadoop FileSystem --------------------------------------------------------------------------

def _filesystem(spark: SparkSession, path: str) -> tuple[Any, Any]:
    sc = spark.sparkContext
    hadoop_path = sc._jvm.org.apache.hadoop.fs.Path(path)  # type: ignore[union-attr]
    return hadoop_path.getFileSystem(sc._jsc.hadoopConfiguration()), hadoop_path  # type: ignore[union-attr]


def hadoop_exists(spark: SparkSession, path: str) -> bool:
    """Whether the path exists; a glob pattern exists when it matches something."""
    fs, hadoop_path = _filesystem(spark, path)
    if any(ch in path for ch in "*?[{"):
        matches = fs.globStatus(hadoop_path)
        return matches is not None and len(matches) > 0
    return bool(fs.exists(hadoop_path))


def hadoop_delete(spark: SparkSession, path: str) -> None:
    """Delete the path and everything under it, when it exists."""
    fs, hadoop_path = _filesystem(spark, path)
    if fs.exists(hadoop_path):
        fs.delete(hadoop_path, True)


def hadoop_read_text(spark: SparkSession, path: str) -> str:
    """A small file's whole text (UTF-8)."""
    fs, hadoop_path = _filesystem(spark, path)
    stream = fs.open(hadoop_path)
    try:
        return str(spark.sparkContext._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))  # type: ignore[union-attr]
    finally:
        stream.close()


def hadoop_write_text(spark: SparkSession, path: str, text: str) -> None:
    """Replace the small file `path` with `text` (UTF-8): written beside it, then renamed over it."""
    fs, hadoop_path = _filesystem(spark, path)
    partial = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(f"{path}.partial")  # type: ignore[union-attr]
    stream = fs.create(partial, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()
    if fs.exists(hadoop_path):
        fs.delete(hadoop_path, False)
    fs.rename(partial, hadoop_path)


def hadoop_list_names(spark: SparkSession, directory: str) -> list[str]:
    """The names of the entries directly under `directory` (none when it does not exist)."""
    fs, hadoop_path = _filesystem(spark, directory)
    if not fs.exists(hadoop_path):
        return []
    return [str(status.getPath().getName()) for status in fs.listStatus(hadoop_path)]


def hadoop_first_line(spark: SparkSession, path: str) -> str:
    """A file's first line (UTF-8, without its line break; "" for an empty file)."""
    fs, hadoop_path = _filesystem(spark, path)
    io = spark.sparkContext._jvm.java.io  # type: ignore[union-attr]
    reader = io.BufferedReader(io.InputStreamReader(fs.open(hadoop_path), "UTF-8"))
    try:
        line = reader.readLine()
    finally:
        reader.close()
    return "" if line is None else str(line)


# --- Spark's status store and scheduler ---------------------------------------------------------

@dataclass(frozen=True)
class StageMetrics:
    """One stage attempt's task metrics, as the status store keeps them."""

    stage_id: int
    tasks: int  # completed + failed
    run_seconds: float
    cpu_seconds: float
    input_bytes: int
    output_bytes: int
    shuffle_read_bytes: int
    shuffle_write_bytes: int
    peak_execution_memory_bytes: int


class StatusStore:
    """The application status store's stages and jobs, newest first (ids only grow)."""

    def __init__(self, spark: SparkSession) -> None:
        self.sc = spark.sparkContext

    def _stages(self) -> Any:
        jvm: Any = self.sc._jvm  # set on a classic session (available() chose this path)
        gateway: Any = self.sc._gateway
        store = self.sc._jsc.sc()  # type: ignore[union-attr]
        # Events reach the status store asynchronously: let the listener bus drain first.
        store.listenerBus().waitUntilEmpty(5000)
        return store.statusStore().stageList(
            jvm.java.util.ArrayList(), False, False, gateway.new_array(jvm.double, 0), jvm.java.util.ArrayList())

    def _jobs(self) -> Any:
        return self.sc._jsc.sc().statusStore().jobsList(self.sc._jvm.java.util.ArrayList())  # type: ignore[union-attr]

    def newest_stage_id(self) -> int:
        return _newest(self._stages(), _stage_id)

    def newest_job_id(self) -> int:
        """Read after a stage call, which drains the listener bus."""
        return _newest(self._jobs(), _job_id)

    def stages_after(self, last_seen: int) -> list[StageMetrics]:
        """The stages whose id is above `last_seen`, oldest first."""
        return [StageMetrics(int(s.stageId()), int(s.numCompleteTasks()) + int(s.numFailedTasks()),
                             s.executorRunTime() / 1000, s.executorCpuTime() / 1e9, int(s.inputBytes()),
                             int(s.outputBytes()), int(s.shuffleReadBytes()), int(s.shuffleWriteBytes()),
                             int(s.peakExecutionMemory()))
                for s in reversed(_newer_than(self._stages(), last_seen, _stage_id))]

    def jobs_after(self, last_seen: int) -> int:
        """How many jobs have an id above `last_seen` (read after `stages_after`)."""
        return len(_newer_than(self._jobs(), last_seen, _job_id))


def _newer_than(newest_first: Any, last_seen: int, ident: Callable[[Any], int]) -> list:
    """The items of a newest-first status-store Seq whose id is above `last_seen`. The walk stops
    at the first older item: each item is a JVM call, and walking the whole history at every step
    cost 2 s of the 20k demo's pipeline, more the longer a session runs."""
    found, iterator = [], newest_first.iterator()
    while iterator.hasNext():
        item = iterator.next()
        if ident(item) <= last_seen:
            break
        found.append(item)
    return found


def _newest(newest_first: Any, ident: Callable[[Any], int]) -> int:
    return ident(newest_first.head()) if newest_first.nonEmpty() else -1


def _stage_id(stage: Any) -> int:
    return int(stage.stageId())


def _job_id(job: Any) -> int:
    return int(job.jobId())


def executor_count(spark: SparkSession) -> int:
    """Executors registered now (the driver not counted; at least 1)."""
    return max(1, spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() - 1)  # type: ignore[union-attr]


def max_concurrent_tasks(spark: SparkSession) -> int:
    """Concurrent task slots of the default resource profile, counted as xgboost.spark counts them."""
    sc = spark.sparkContext._jsc.sc()  # type: ignore[union-attr]
    return int(sc.maxNumConcurrentTasks(sc.resourceProfileManager().resourceProfileFromId(0)))


# --- MLlib and exceptions -----------------------------------------------------------------------

def exact_binary_aucs(pairs: DataFrame) -> tuple[float, float]:
    """(ROC AUC, PR AUC) of `pairs`' (score double, label double) rows: MLlib's metrics over the
    DataFrame (a constructor package-private in Scala, public in the bytecode): one distributed
    sort shared by both areas, no down-sampling (numBins 0), no row through Python. Measured at
    200k rows with 100k distinct scores: its areas vary by ~1e-6 from run to run, where the public
    evaluator's (the stock path) equal scikit-learn's (README, borrowed internals)."""
    jvm = pairs.sparkSession.sparkContext._jvm  # type: ignore[union-attr]
    metrics = jvm.org.apache.spark.mllib.evaluation.BinaryClassificationMetrics(pairs._jdf)  # type: ignore[union-attr]
    try:
        return float(metrics.areaUnderROC()), float(metrics.areaUnderPR())
    finally:
        metrics.unpersist()


@dataclass(frozen=True)
class JavaCause:
    """One Java exception of a chain: its class's simple name and its superclasses', its message."""

    class_names: tuple[str, ...]
    message: str | None


def release_local_checkpoint(df: DataFrame) -> None:
    """Unpersist the blocks a `localCheckpoint` of `df` holds (its analyzed plan's RDD)."""
    df._jdf.queryExecution().analyzed().rdd().unpersist(False)


def java_causes(error: BaseException, *, limit: int = 10) -> list[JavaCause]:
    """The Java exception behind `error` and its causes (at most `limit`: a chain is short and a
    cycle must not loop forever); [] when there is none or the JVM path is off."""
    java = getattr(error, "java_exception", None) or getattr(error, "_origin", None)
    if java is None or not available():
        return []
    chain: list[JavaCause] = []
    try:
        while java is not None and len(chain) < limit:
            names, cls = [], java.getClass()
            while cls is not None:
                names.append(str(cls.getSimpleName()))
                cls = cls.getSuperclass()
            message = java.getMessage()
            chain.append(JavaCause(tuple(names), None if message is None else str(message)))
            java = java.getCause()
    except Exception:  # noqa: BLE001 - not a Java object after all, or the gateway is gone while unwinding
        pass
    return chain
