"""The distributed fit: an xgboost.spark estimator from config, retried as a whole on failure.

Spark does not retry a failed barrier stage task by task; lakeboost re-runs the whole fit
(`fit_retries` times) and then fails with the cause, rather than hanging.

Two things xgboost.spark (3.2-3.4) does that are not training are left out (bench/bench_train.py
measures both): it evaluates the eval metric on the *training* rows every round besides the
validation rows (at 500k rows and aucpr, a sort of the whole partition per round, for a curve
lakeboost never reads: early stopping watches validation), and a classifier counts the label's
distinct values with a Spark job over the data before the fit (the trainer has counted them).
And where the workers can read a shared directory, the rows reach them as files written once
(worker_files.py) instead of xgboost.spark's per-fit conversion of every row to Arrow and pandas.

A third costs seconds per fit on any data: xgboost.spark's worker calls Spark's task barrier three
times (on starting, to gather the workers' messages, after training), and Spark (4.x) waits for
a barrier's reply in steps of a whole second (`Thread.sleep(1000)` in BarrierTaskContext). On a
CPU fit with the tracker on the driver none of the three carries anything: the workers meet at
xgboost's tracker anyway and their messages are the same on every worker; lakeboost answers
them on the worker without the wait (`without_barrier_waits`). The stage stays a barrier stage:
its tasks start together and fail together.

All three (and the worker files) reach into xgboost.spark's internals, which live in
lakeboost/borrowed/xgboost_spark.py behind its version guard; outside the tested versions the fit
takes xgboost.spark's stock path (`fit_path`), slower but the same model (tests/borrowed).

Over Spark Connect the fit is xgboost.spark's own (3.3+; `fit_path` says so in its one line):
the borrowed workers need a classic frame in this process, so none of the above applies there
(no worker files: `worker_data: files` is refused; the barrier waits and the label count stay;
the workers also watch the training rows). xgboost.spark then always repartitions the rows
round-robin into `num_workers` partitions (it cannot count a Connect frame's partitions), so the
workers get that split of the rows rather than lakeboost's layout: with the same split asked of
a classic fit (`force_repartition`, streamed rows) the two give the same model
(tests/train/test_connect_fit.py). The tracker runs on worker 0, not on the driver.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import xgboost
from pyspark.sql import DataFrame

from lakeboost.borrowed import PathChoice
from lakeboost.borrowed.xgboost_spark import ALIAS, MatrixRequest, estimator
from lakeboost.config.training import ModelConfig
from lakeboost.errors import TrainingError
from lakeboost.spark.diagnostics import root_cause
from lakeboost.train.checkpoint import CheckpointStore, Resumable
from lakeboost.train.worker_files import WORKER_TIMES, WorkerFileReader, fit_matrices, openmp_threads

log = logging.getLogger(__name__)
DEFAULT_EVAL_METRIC = {"binary:logistic": "aucpr", "multi:softprob": "mlogloss",
                       "reg:squarederror": "rmse", "reg:absoluteerror": "mae"}


def is_classification(objective: str) -> bool:
    return objective.startswith(("binary:", "multi:"))


def estimator_params(model: ModelConfig, *, features: list[str], label: str, overrides: dict[str, Any] | None = None,
                     scale_pos_weight: float | None = None, weight_col: str | None = None,
                     categorical: Sequence[str] = ()) -> dict[str, Any]:
    """Keyword arguments for the xgboost.spark estimator (config params, then overrides).
    `categorical`: features given as native codes (xgboost.spark's `feature_types`, "c")."""
    params: dict[str, Any] = {
        "features_col": features, "label_col": label, "num_workers": model.num_workers, "device": model.device,
        "objective": model.objective, "n_estimators": model.n_estimators,
        "eval_metric": model.eval_metric or DEFAULT_EVAL_METRIC[model.objective],
        "validation_indicator_col": "is_valid", "random_state": model.seed,
        # lakeboost lays out the partitions (every worker gets every class and validation rows).
        "force_repartition": False,
        # The per-round evaluation is still computed (the booster's learning curve), not printed: it
        # was one console line per boosting round (219 of a pipeline log's 299 lines).
        "verbose": False,
        **model.params, **(overrides or {}),
    }
    if is_classification(model.objective):
        # SparkXGBClassifier picks binary/multiclass from the label's classes itself.
        params.pop("objective")
    if model.early_stopping_rounds:
        params["early_stopping_rounds"] = model.early_stopping_rounds
    if scale_pos_weight is not None and model.objective == "binary:logistic":
        params["scale_pos_weight"] = scale_pos_weight
    if weight_col:
        params["weight_col"] = weight_col
    if categorical:
        params["feature_types"] = feature_types(features, categorical)
    return params


def feature_types(features: Sequence[str], categorical: Sequence[str]) -> list[str]:
    """xgboost's feature types: "c" for a natively encoded categorical, "q" for a number."""
    return ["c" if f in categorical else "q" for f in features]


# Booster attributes the worker sets (epoch seconds when boosting started and ended) so the driver
# can split a fit's wall time; read and removed by `fit_phases`, never saved with the model.
BOOSTING_STARTED, BOOSTING_ENDED = "lakeboost_boosting_started", "lakeboost_boosting_ended"
WORKER_TIMES_PREFIX = "lakeboost_worker_"  # worker_files.WORKER_TIMES, when the rows came as files


@dataclass(frozen=True)
class WorkerTrain:
    """`xgboost.train` as a worker runs it (with the worker's `nthread` OpenMP threads), with the
    boosting's start and end times on the booster (see `fit_phases`); checkpointed, and resumed
    from a checkpoint, where `checkpoints` says (train/checkpoint.py). Pickled with the fit's
    worker function."""

    checkpoints: Resumable | None = None

    def __call__(self, params: dict[str, Any], dtrain: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.time()
        with openmp_threads(params.get("nthread")):
            if self.checkpoints is not None:
                booster = self.checkpoints.train(xgboost.train, params, dtrain, *args, **kwargs)
            else:
                booster = xgboost.train(params, dtrain, *args, **kwargs)
        booster.set_attr(**{BOOSTING_STARTED: repr(started), BOOSTING_ENDED: repr(time.time())},
                         **{f"{WORKER_TIMES_PREFIX}{k}": repr(v) for k, v in WORKER_TIMES.items()})
        WORKER_TIMES.clear()
        return booster


train_recording_times = WorkerTrain()


def build_streamed_matrices(request: MatrixRequest, *, curve_rows: int = 0) -> Any:
    """The DMatrices from xgboost.spark's Arrow stream, with the worker's `nthread` OpenMP threads
    (see `openmp_threads`): on a CPU with a QuantileDMatrix and feature columns, as
    worker_files.fit_matrices builds them (a plain DMatrix for the validation rows); anything else
    (GPU, sparse vectors, a vector column, a base margin or query id column) by xgboost.spark's
    own builder. `curve_rows`: the training-curve sample (worker_files.fit_matrices), on our matrices only."""
    import pandas as pd  # on the worker

    options, features = request.kwargs, request.feature_cols
    frames = list(request.rows)
    ours = (request.cpu_quantile and features is not None and bool(frames)
            and not {ALIAS.margin, ALIAS.qid} & set(frames[0].columns))
    with openmp_threads(options.get("nthread")):
        if not ours:
            return request.stock(iter(frames))
        frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        del frames
        names = {alias: alias for alias in (ALIAS.label, ALIAS.valid, ALIAS.weight) if alias in frame.columns}
        return fit_matrices(lambda name: frame[name].to_numpy(), list(features or ()), names, options,
                            has_validation_col=request.has_validation_col, curve_rows=curve_rows)


def worker_threads(configured: int | None, *, master: str, task_slots: int | None,
                   num_workers: int) -> int | None:
    """Threads per xgboost worker: as configured; on a local master the slots shared among the
    workers; else None (xgboost.spark then uses spark.task.cpus)."""
    if configured is not None:
        return configured
    if master.startswith("local") and task_slots:
        return max(1, task_slots // max(num_workers, 1))
    return None


@dataclass(frozen=True)
class FitPhases:
    """Where a fit's wall time went, split by worker 0's boosting start and end (epoch seconds).

    before_boosting: the Spark job's start, the Python workers, the rows sent to them and the
    DMatrix build; boosting: xgboost.train; after_boosting: the model's trip back to the driver.
    """

    before_boosting: float
    boosting: float
    after_boosting: float
    # Parts of before_boosting when the workers read files: the job and the Python workers
    # starting, the file read, the DMatrix build (None on xgboost.spark's stream).
    to_workers: float | None = None
    reading: float | None = None
    dmatrix: float | None = None


def fit_phases(model, *, started: float, ended: float) -> FitPhases | None:
    """The phases of a fit that ran from `started` to `ended` (time.time()); the booster's timing
    attributes are removed. None when the fit did not record them (not a lakeboost estimator)."""
    booster = model.get_booster()
    attributes = booster.attributes()
    begin, end = attributes.get(BOOSTING_STARTED), attributes.get(BOOSTING_ENDED)
    booster.set_attr(**{name: None for name in attributes
                        if name in (BOOSTING_STARTED, BOOSTING_ENDED) or name.startswith(WORKER_TIMES_PREFIX)})
    if begin is None or end is None:
        return None
    times = {name[len(WORKER_TIMES_PREFIX):]: float(value) for name, value in attributes.items()
             if name.startswith(WORKER_TIMES_PREFIX)}
    parts = {}
    if {"reading_started", "read", "built"} <= set(times):
        parts = {"to_workers": times["reading_started"] - started, "reading": times["read"] - times["reading_started"],
                 "dmatrix": times["built"] - times["read"]}
    return FitPhases(float(begin) - started, float(end) - float(begin), ended - float(end), **parts)


@dataclass(frozen=True)
class FitAttempt:
    """One try of a fit: the rounds it loaded from a checkpoint (0: from the start), its seconds,
    and why it failed (None: the attempt that gave the model)."""

    resumed_from: int
    seconds: float
    error: str | None = None


def fit_with_retries(data: DataFrame, params: dict[str, Any], *, objective: str, retries: int, path: PathChoice,
                     num_classes: int = 2, threads: int | None = None,
                     worker_files: WorkerFileReader | None = None, checkpoints: CheckpointStore | None = None,
                     checkpoint_every: int = 0, curve_rows: int = 0) -> tuple[Any, FitPhases | None, list[FitAttempt]]:
    """Fit on `path` (borrowed/xgboost_spark.fit_path), retrying up to `retries` times; raise
    TrainingError with the cause. With `checkpoints` (the borrowed path only), worker 0 saves the
    booster every `checkpoint_every` rounds and a retry resumes from the newest checkpoint
    (train/checkpoint.py) instead of round 0. `curve_rows`: the training curve's sample per worker
    on xgboost.spark's stream (a WorkerFileReader carries its own). Returns the model, where its
    fit's time went (None on the stock path) and the attempts."""
    attempts: list[FitAttempt] = []
    resumable = checkpoints is not None and checkpoint_every > 0 and path.borrowed
    for attempt in range(retries + 1):
        started = time.monotonic()
        started_epoch = time.time()
        resume_from = checkpoints.latest() if resumable and attempt and checkpoints is not None else 0
        if resume_from:
            log.info("xgboost fit attempt %d resumes from the checkpoint after round %d of %s", attempt + 1,
                     resume_from, params.get("n_estimators"))
        train = WorkerTrain(Resumable(checkpoints, checkpoint_every, resume_from)
                            if resumable and checkpoints is not None else None)
        try:
            model_estimator = estimator(path, params, classification=is_classification(objective),
                                        num_classes=num_classes, threads=threads, train=train,
                                        matrices=worker_files if worker_files is not None else
                                        partial(build_streamed_matrices, curve_rows=curve_rows))
            with one_arrow_batch_per_partition(data.sparkSession):
                model = model_estimator.fit(data)
            phases = fit_phases(model, started=started_epoch, ended=time.time())
            attempts.append(FitAttempt(resume_from, time.monotonic() - started))
            log.info("xgboost fit %d took %.1fs%s", attempt + 1, time.monotonic() - started,
                     "" if phases is None else f" ({phases.before_boosting:.1f}s to the workers' DMatrix, "
                     f"{phases.boosting:.1f}s boosting, {phases.after_boosting:.1f}s model to the driver)")
            if phases is not None and phases.reading is not None:
                log.info("xgboost workers: %.1fs to start, %.1fs reading their files, %.1fs building the DMatrix",
                         phases.to_workers, phases.reading, phases.dmatrix)
            return model, phases, attempts
        except (ValueError, TypeError) as exc:  # parameter errors: retrying cannot help
            raise TrainingError(f"xgboost rejected the parameters: {exc}") from None
        except Exception as exc:
            last_error = root_cause(exc)
            attempts.append(FitAttempt(resume_from, time.monotonic() - started, last_error))
            log.warning("xgboost fit attempt %d/%d failed after %.1fs: %s", attempt + 1, retries + 1,
                        time.monotonic() - started, last_error)
    raise TrainingError(f"xgboost fit failed {retries + 1} time(s); last error: {attempts[-1].error}")


@contextmanager
def one_arrow_batch_per_partition(spark):
    """xgboost.spark (3.2-3.4) builds each worker's DMatrix from Arrow batches and fails
    (KeyError 'values', seen as "failed barrier ResultStage") when batches split a partition's
    training and validation rows; one batch per partition avoids it. The DMatrix holds the
    partition in memory anyway, so the larger batch costs little extra."""
    keys = {"spark.sql.execution.arrow.maxRecordsPerBatch": "0", "spark.sql.execution.arrow.maxBytesPerBatch": "1g"}
    previous = {k: spark.conf.get(k, None) for k in keys}
    for k, v in keys.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in previous.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)


def rounds_used(model) -> int:
    """Boosting rounds the model keeps (best iteration + 1 under early stopping)."""
    booster = model.get_booster()
    best = booster.attr("best_iteration")
    return int(best) + 1 if best is not None else booster.num_boosted_rounds()
