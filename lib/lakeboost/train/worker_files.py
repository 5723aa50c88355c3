"""The fit's rows handed to the xgboost workers as files, not streamed through Spark's Python runner.

xgboost.spark feeds each worker its partition through `mapInPandas`: every value of every row is
converted from Spark's rows to Arrow in the JVM, sent over a socket, turned into pandas, then
copied again into a QuantileDMatrix, on every fit (a tuning run repeats it per trial). Here the
laid-out rows are written once as Parquet (the features already cast to float32, the type the
DMatrix holds), one file per worker partition, and xgboost.spark is given a placeholder of one
row per worker. Each worker then reads its own file with pyarrow (columnar, no per-row work) and
builds the QuantileDMatrix straight from its Arrow columns with xgboost.spark's keywords, in
xgboost.spark's order (anything else, e.g. a GPU or sparse fit, through xgboost.spark's own
builder), so quantile sketching, validation rows, weights and missing values behave as there.

The directory must be readable by every executor: a local temporary directory on a local master,
or `training.model.worker_files_dir` (shared storage pyarrow opens: a local or mounted path,
file://, s3://, gs://, hdfs://, abfs://) on a cluster.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import FloatType

from lakeboost.borrowed.xgboost_spark import ALIAS as XGB_ALIAS
from lakeboost.borrowed.xgboost_spark import TRAIN_CURVE_SAMPLE, MatrixRequest
from lakeboost.errors import TrainingError
from lakeboost.spark.fs import delete_path

PART = "part-{:05d}-"  # Spark names each task's output file after its partition id
# Set on a worker by WorkerFileReader (epoch seconds: reading started, file read, DMatrix built)
# and moved onto the booster by the worker's train function (fit.py), for FitPhases.
WORKER_TIMES: dict[str, float] = {}


@contextmanager
def openmp_threads(threads: int | None) -> Iterator[None]:
    """Let OpenMP run `threads` threads in this Python worker for the block.

    PySpark starts its Python workers with OMP_NUM_THREADS=spark.task.cpus (1 by default), and
    xgboost never runs more threads than OpenMP allows, whatever its `nthread`: a worker given
    every core of a local master would still build its DMatrix and boost on one.
    """
    if not threads or threads <= 1:
        yield
        return
    from threadpoolctl import threadpool_limits  # on the worker

    with threadpool_limits(limits=threads, user_api="openmp"):
        yield


def files_directory(configured_dir: str | None, *, mode: str, master: str) -> str | None:
    """Where this fit's worker files go (a fresh directory), or None to use xgboost.spark's stream."""
    local = master.startswith("local")
    if mode == "spark" or (mode == "auto" and not local and not configured_dir):
        return None
    if configured_dir:
        return f"{configured_dir.rstrip('/')}/fit-{uuid.uuid4().hex}"
    if not local:
        raise TrainingError("training.model.worker_data=files on a cluster needs training.model.worker_files_dir: "
                            "a directory every executor can read (e.g. under the lakehouse's storage)")
    return f"{tempfile.gettempdir()}/lakeboost-fit-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class WorkerFiles:
    """Parquet files of a fit's laid-out rows: partition p of the layout in the file named part-p."""

    path: str
    features: tuple[str, ...]  # float32
    others: tuple[str, ...]  # label, validation and weight columns, as they were

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.features, *self.others)


def write_worker_files(laid_out: DataFrame, path: str, *, features: list[str], others: list[str]) -> WorkerFiles:
    """Write each partition of `laid_out` (one per worker) to its own Parquet file under `path`."""
    columns = [F.col(c).cast(FloatType()).alias(c) for c in features] + [F.col(c) for c in others]
    laid_out.select(*columns).write.mode("errorifexists").parquet(path)
    return WorkerFiles(path, tuple(features), tuple(others))


def file_layout(spark: SparkSession, files: WorkerFiles, *, label: str, valid: str) -> DataFrame:
    """Per written file: its worker partition p, distinct labels and validation rows (as
    prepare.partition_counts, for layout_problems)."""
    part = F.regexp_extract(F.input_file_name(), r"part-(\d+)-", 1).cast("int")
    return (spark.read.parquet(files.path).select(part.alias("p"), label, valid)
            .groupBy("p").agg(F.countDistinct(label).alias("classes"), F.sum(F.col(valid).cast("int")).alias("valid")))


def placeholder(spark: SparkSession, num_workers: int, schema_source: DataFrame, columns: tuple[str, ...]) -> DataFrame:
    """One row per worker partition with the files' columns: what xgboost.spark's job iterates."""
    types = {f.name: f.dataType for f in schema_source.schema.fields}
    rows = spark.range(0, num_workers, 1, numPartitions=num_workers)
    return rows.select(*[F.lit(None).cast(types[c]).alias(c) for c in columns])


def remove(spark: SparkSession, path: str) -> None:
    """Delete a fit's worker files (any Hadoop file system; a local directory directly)."""
    if "://" not in path:
        shutil.rmtree(path, ignore_errors=True)
        return
    delete_path(spark, path)


def _pyarrow_location(path: str) -> str:
    """The path as pyarrow names it (Hadoop's s3a:// is pyarrow's s3://; dbfs:/ is mounted at /dbfs)."""
    if path.startswith("s3a://"):
        return "s3://" + path[len("s3a://"):]
    if path.startswith("dbfs:/"):
        return "/dbfs/" + path[len("dbfs:/"):].lstrip("/")
    return path


class WorkerFileReader:
    """Builds the workers' matrices of one fit (borrowed/xgboost_spark.MatrixRequest in, (train, valid) out).

    `aliases` maps the files' columns to xgboost.spark's names for them (label, validationIndicator,
    weight); the features keep their names. On a CPU with a QuantileDMatrix (hist, approx:
    xgboost.spark's choice) the matrices are built straight from the Arrow columns: one float32
    array per split, the same calls in the same order as xgboost.spark's builder (the workers'
    quantile sketch is collective), about a third of the memory of going through pandas. Anything
    else goes through xgboost.spark's own builder (`MatrixRequest.stock`) with a pandas frame.
    Pickled with the fit's worker function (see fit.py).
    """

    def __init__(self, files: WorkerFiles, aliases: dict[str, str], *, curve_rows: int = 0) -> None:
        self.files, self.aliases, self.curve_rows = files, aliases, curve_rows

    def read_table(self, partition: int):
        """The pyarrow Table of this worker partition's file: the features and the aliased columns."""
        import pyarrow.fs as pafs  # on the worker
        import pyarrow.parquet as pq

        filesystem, directory = pafs.FileSystem.from_uri(_pyarrow_location(self.files.path)) \
            if "://" in self.files.path else (pafs.LocalFileSystem(), _pyarrow_location(self.files.path))
        names = [info.path for info in filesystem.get_file_info(pafs.FileSelector(directory))
                 if info.base_name.startswith(PART.format(partition)) and info.base_name.endswith(".parquet")]
        if not names:
            raise TrainingError(f"no worker file for partition {partition} under {self.files.path}")
        columns = [*self.files.features, *(c for c in self.files.others if c in self.aliases)]
        return pq.read_table(names, filesystem=filesystem, columns=columns)

    def read(self, partition: int):
        """The partition as the pandas frame xgboost.spark's builder reads (aliased column names)."""
        return self.read_table(partition).to_pandas().rename(columns=self.aliases)

    def __call__(self, request: MatrixRequest):
        from pyspark import BarrierTaskContext  # on the worker

        started = time.time()
        for _ in request.rows:  # the placeholder row
            pass
        partition = BarrierTaskContext.get().partitionId()
        if request.cpu_quantile:
            table = self.read_table(partition)
            read = time.time()
            with openmp_threads(request.kwargs.get("nthread")):
                matrices = self.quantile_matrices(table, request.kwargs, has_validation_col=request.has_validation_col)
        else:
            frame = self.read(partition)
            read = time.time()
            with openmp_threads(request.kwargs.get("nthread")):
                matrices = request.stock(iter([frame]))
        WORKER_TIMES.update(reading_started=started, read=read, built=time.time())
        return matrices

    def quantile_matrices(self, table, kwargs: dict[str, Any], *, has_validation_col: bool):
        """(train, valid or None) from the Arrow table: see `fit_matrices`."""
        return fit_matrices(lambda name: table.column(name).to_numpy(zero_copy_only=False), self.files.features,
                            {alias: column for column, alias in self.aliases.items()}, kwargs,
                            has_validation_col=has_validation_col, curve_rows=self.curve_rows)


# xgboost.spark's split of its DMatrix keywords (data.create_dmatrix_from_partitions): these go to
# the matrix, the rest (feature names and types, weights) are the rows' meta-information.
MATRIX_KEYWORDS = frozenset({"max_bin", "missing", "silent", "nthread", "enable_categorical"})


def fit_matrices(column: Callable[[str], Any], features: Sequence[str], names: dict[str, str],
                 kwargs: dict[str, Any], *, has_validation_col: bool, curve_rows: int = 0):
    """A CPU worker's (train, valid or None) for xgboost.train from its columns: `column(name)` is a
    column's values as a numpy array, `names` maps xgboost.spark's aliases (label, validation,
    weight) to column names, `kwargs` are xgboost.spark's DMatrix keywords.

    The training rows become a QuantileDMatrix, as xgboost.spark's make_qdm builds it (the quantile
    sketch is collective: every worker builds one). The validation rows become a plain DMatrix:
    xgboost evaluates a QuantileDMatrix several times slower each round (dmlc/xgboost#10793; at 1M
    demo rows, 60k validation rows and 102 rounds: 2.0 s against 0.66 s, most of what the fit cost
    beyond native xgboost). Every worker still builds one, empty or not: building a DMatrix is
    collective too.

    With `curve_rows`, the training matrix carries (as `TRAIN_CURVE_SAMPLE`, which the worker's
    train function watches as "training") a plain DMatrix of at most that many of the worker's
    training rows, evenly spaced and the same on every fit of the same layout: a training curve
    at the cost of scoring that many rows per round (`curve_sample`).
    """
    import numpy as np  # on the worker
    import xgboost

    params = {k: v for k, v in kwargs.items() if k in MATRIX_KEYWORDS}
    meta = {k: v for k, v in kwargs.items() if k not in MATRIX_KEYWORDS}
    meta.setdefault("feature_names", list(features))

    def arrays(selected) -> dict[str, Any]:
        def rows_of(name: str):
            values = column(name)
            return values if selected is None else values[selected]

        label = rows_of(names[XGB_ALIAS.label])
        matrix = np.empty((len(label), len(features)), dtype=np.float32)
        for j, name in enumerate(features):  # one column at a time: no second full copy
            matrix[:, j] = rows_of(name)
        weight = rows_of(names[XGB_ALIAS.weight]) if XGB_ALIAS.weight in names else None
        return dict(data=matrix, label=label, weight=weight)  # DMatrix keywords

    plain = {k: v for k, v in params.items() if k != "max_bin"}
    is_train = None if not has_validation_col else ~np.asarray(column(names[XGB_ALIAS.valid])).astype(bool)
    train = xgboost.QuantileDMatrix(**arrays(is_train), **meta, **params)
    if curve_rows:  # every worker builds it, empty or not: building a DMatrix is collective
        rows = np.flatnonzero(is_train) if is_train is not None else np.arange(train.num_row())
        setattr(train, TRAIN_CURVE_SAMPLE, xgboost.DMatrix(**arrays(curve_sample(rows, curve_rows)), **meta, **plain))
    if is_train is None:
        return train, None
    return train, xgboost.DMatrix(**arrays(~is_train), **meta, **plain)


def curve_sample(rows, limit: int):
    """At most `limit` of `rows` (row indices), evenly spaced, first and last included."""
    import numpy as np  # on the worker

    if len(rows) <= limit:
        return rows
    return rows[np.linspace(0, len(rows) - 1, num=limit).round().astype(int)]
