"""Every use of xgboost.spark's internals: the fit's worker path (lakeboost's train and DMatrix
functions on the workers, no barrier waits, no label-counting pass), behind a version guard.

xgboost.spark's worker function is a closure that calls two module globals of
`xgboost.spark.core` (`worker_train`, `create_dmatrix_from_partitions`) and is pickled by value,
with those globals' current values, when the fit builds its job. The borrowed path puts
lakeboost's functions in those globals for that moment only, under a lock (concurrent fits, e.g.
tuning trials in threads, each pickle their own; the module is itself again before the job runs),
and overrides five private methods: `_fit` (the window the globals are held opens; the driver's
tracker stopped when it ends), `_get_tracker_args` (that tracker started by lakeboost:
`DriverTracker`), `_prepare_input` (the input frame whose `mapInPandas`, xgboost.spark's training
job, pickles the worker function, answers its barrier calls on the worker, and closes the window),
`_get_xgb_parameters` (the workers' threads) and the classifier's `_get_distributed_train_params` (its number of classes
told, not counted). xgboost 3.3 made the job a barrier `mapInPandas` (it was an RDD barrier stage
over a plain `mapInPandas`, whose stage-level scheduling hook closed the window in 3.1-3.2) and
passes the session to `_run_on_gpu`; `launch_tracker_on_driver` has no default any more (on a
classic session xgboost.spark takes it as true). train/fit.py's module doc says what each buys
(bench/bench_train.py).

On Spark Connect (no JVM in this process: the frame's `mapInPandas` is a gRPC plan, not a py4j
call, and the workers' session is the server's) the fit takes xgboost.spark's own Connect path
(3.3+: a barrier `mapInPandas`, the tracker on worker 0). Outside `TESTED`, when one of those
internals is missing, or with `LAKEBOOST_BORROWED=off`, `fit_path` chooses the stock path too:
a plain SparkXGBClassifier or SparkXGBRegressor fit over xgboost.spark's own Arrow stream (the
workers use spark.task.cpus threads, evaluate the training rows every round, and a classifier counts its labels first).
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import xgboost
import xgboost.spark.core as _core
import xgboost.spark.data as _data
from pyspark.sql import DataFrame
from xgboost.collective import Config as CollectiveConfig
from xgboost.core import XGBoostError
from xgboost.spark import SparkXGBClassifier, SparkXGBRegressor
from xgboost.tracker import RabitTracker

from lakeboost.borrowed import PathChoice, TestedRange, announce, is_connect_session, outside, switched_off

TESTED = (TestedRange("xgboost", (3, 3), (3, 5)), TestedRange("pyspark", (4, 2), (4, 3)))
NEED = "xgboost fit"

# xgboost.spark's column aliases (label, valid, weight, margin, qid) and its own DMatrix builder.
ALIAS = _data.alias
_STOCK_BUILDER = _core.create_dmatrix_from_partitions
_STOCK_TRAIN = _core.worker_train
_GLOBALS = ("worker_train", "create_dmatrix_from_partitions")
_METHODS = ("_fit", "_prepare_input", "_get_xgb_parameters", "_run_on_gpu", "_get_distributed_train_params",
            "_gen_xgb_params_dict", "_gen_fit_params_dict", "_get_tracker_args")
_TRAINING = "training"  # xgboost.spark's name for the training rows in `evals`
_globals_lock = threading.Lock()
# The `_Fit` running on this thread (xgboost.spark's `_fit` calls `_prepare_input` and
# `_get_tracker_args` on the thread that fits). Per fit, not per estimator: two threads fitting one
# estimator would otherwise stop each other's tracker and release each other's hold on the globals.
_this_fit = threading.local()
log = logging.getLogger(__name__)


def fit_path(data: DataFrame, *, force_stock: bool = False, versions: dict[str, str] | None = None) -> PathChoice:
    """The path a fit over `data` takes, logged in one line. `versions` stands in for the installed
    ones (tests)."""
    return announce(NEED, _choose(data, force_stock=force_stock, versions=versions))


# The one-line reason on Connect: which path runs there and why the borrowed one cannot.
ON_CONNECT = ("Spark Connect: xgboost.spark's own Connect fit (a barrier mapInPandas, the tracker on worker 0); "
              "the borrowed workers need a classic session's py4j frame")


def _choose(data: DataFrame, *, force_stock: bool, versions: dict[str, str] | None) -> PathChoice:
    if is_connect_session(data):
        return PathChoice(False, ON_CONNECT)
    if force_stock:
        return PathChoice(False, "stock path requested")
    if switched_off():
        return PathChoice(False, "LAKEBOOST_BORROWED=off")
    why = outside(TESTED, versions)
    if why:
        return PathChoice(False, why)
    missing = [name for name in _GLOBALS if not hasattr(_core, name)] + \
              [name for name in _METHODS if not hasattr(_core._SparkXGBEstimator, name)]
    if missing:
        return PathChoice(False, f"xgboost.spark has no {', '.join(missing)}")
    return PathChoice(True, f"{' and '.join(str(t) for t in TESTED)} tested")


@dataclass(frozen=True)
class MatrixRequest:
    """What xgboost.spark asks a worker's DMatrix builder for (`create_dmatrix_from_partitions`'s
    keywords): `rows` (pandas frames, aliased columns), `feature_cols`, `kwargs` (DMatrix keywords)."""

    rows: Iterator[Any]
    feature_cols: list[str] | None
    kwargs: dict[str, Any]
    has_validation_col: bool
    cpu_quantile: bool  # CPU, QuantileDMatrix, dense: where lakeboost builds the matrices itself
    _call: dict[str, Any] = field(repr=False, default_factory=dict)

    def stock(self, frames: Iterator[Any]) -> Any:
        """(train, valid or None) by xgboost.spark's own builder, over `frames`."""
        return _STOCK_BUILDER(iterator=frames, **self._call)


def as_xgboost_spark_builder(build: Callable[[MatrixRequest], Any]) -> Callable[..., Any]:
    """`build` as xgboost.spark's `create_dmatrix_from_partitions`, called with its keywords."""

    def create_dmatrix_from_partitions(*, iterator: Iterator[Any], feature_cols: Any, dev_ordinal: int | None,
                                       use_qdm: bool, kwargs: dict[str, Any], enable_sparse_data_optim: bool,
                                       has_validation_col: bool) -> Any:
        call = dict(feature_cols=feature_cols, dev_ordinal=dev_ordinal, use_qdm=use_qdm, kwargs=kwargs,
                    enable_sparse_data_optim=enable_sparse_data_optim, has_validation_col=has_validation_col)
        cpu_quantile = dev_ordinal is None and use_qdm and not enable_sparse_data_optim
        return build(MatrixRequest(iterator, feature_cols, kwargs, has_validation_col, cpu_quantile, call))

    return create_dmatrix_from_partitions


# The attribute a lakeboost DMatrix builder sets on a worker's training matrix: a small DMatrix of a
# fixed sample of its training rows, watched as "training" in their place (the training curve).
TRAIN_CURVE_SAMPLE = "lakeboost_train_curve_sample"


def validation_only(train: Callable[..., Any]) -> Callable[..., Any]:
    """`train` (called as xgboost.train) as xgboost.spark's `worker_train`, watching the validation
    rows and, in place of every training row, the training matrix's `TRAIN_CURVE_SAMPLE` when its
    builder made one (still named "training": xgboost.spark's training summary reads it as the
    training curve); xgboost.spark sorts its parameters into train() keywords and booster
    parameters by this function's signature, so it reads as xgboost.train's."""

    def worker_train(params: dict[str, Any], dtrain: Any, *args: Any, evals: Any = (), **kwargs: Any) -> Any:
        sample = getattr(dtrain, TRAIN_CURVE_SAMPLE, None)
        watched = [(matrix, name) if name != _TRAINING else (sample, name) for matrix, name in evals or ()
                   if name != _TRAINING or sample is not None]
        return train(params, dtrain, *args, evals=watched, **kwargs)

    worker_train.__signature__ = inspect.signature(xgboost.train)  # type: ignore[attr-defined]
    return worker_train


# How long a finished fit waits for its tracker to see every worker's shutdown before stopping it.
TRACKER_FINISH_SECONDS = 5.0


class DriverTracker:
    """xgboost's RabitTracker for one fit, started on the driver the way xgboost.spark starts its own
    (`_start_tracker`: sorted by task, the driver's host, coll_cfg's port) but owned by lakeboost,
    which stops it when the fit ends. xgboost.spark's tracker thread waits, with no timeout, for every
    worker to say it is done (a running group's tracker polls with no timeout): when the barrier stage
    is cancelled (a pruned trial, a lost worker) the workers die without a word and the thread and its
    listening port stay for the driver's lifetime. `close` stops the listener (`free`, which makes the
    pending accept fail and the wait return) and joins the thread."""

    def __init__(self, host: str | None, n_workers: int, port: int) -> None:
        self.tracker = RabitTracker(n_workers=n_workers, host_ip=host, sortby="task", port=port)
        self.tracker.start()
        self.worker_args: dict[str, Any] = {"n_workers": n_workers, **self.tracker.worker_args()}
        self.stopping = False
        self.thread = threading.Thread(target=self._wait, name="lakeboost-xgboost-tracker", daemon=True)
        self.thread.start()

    def _wait(self) -> None:
        try:
            self.tracker.wait_for()
        except XGBoostError as exc:  # stopped by `close` (expected), or the group failed
            if not self.stopping:
                log.warning("xgboost tracker on the driver stopped: %s", exc)

    def close(self, *, finished: bool) -> None:
        """Stop the tracker; after a `finished` fit first let it see the workers' shutdowns."""
        if finished:
            self.thread.join(TRACKER_FINISH_SECONDS)
            if self.thread.is_alive():
                log.warning("xgboost tracker still waiting for its workers %.0f s after the fit returned; stopping it",
                            TRACKER_FINISH_SECONDS)
        self.stopping = True
        try:
            # Stops the listener first; then reports how the tracker's loop ended, an error when it was
            # stopped waiting (its C++ handle is then not deleted: a few bytes, no socket, no thread).
            self.tracker.free()
        except XGBoostError as exc:
            log.debug("xgboost tracker freed after the fit stopped it: %s", exc)
        self.thread.join(TRACKER_FINISH_SECONDS)


class _Fit:
    """One borrowed fit's hold on the worker globals (from `_fit` until its job is pickled) and its
    driver tracker (stopped when `_fit` ends)."""

    def __init__(self) -> None:
        self.holding_globals = True
        self.tracker: DriverTracker | None = None
        self._lock = threading.Lock()  # the job's pickling and `_fit`'s end may both release

    def release_globals(self) -> None:
        with self._lock:
            if self.holding_globals:
                _core.worker_train, _core.create_dmatrix_from_partitions = _STOCK_TRAIN, _STOCK_BUILDER
                self.holding_globals = False
                _globals_lock.release()


class _LakeboostWorkers:
    """An xgboost.spark estimator whose workers run `worker_train` and `matrices`, with `threads`
    threads (None: spark.task.cpus), and meet without Spark's barrier waits (`without_barrier_waits`)."""

    threads: int | None = None
    worker_train: Callable[..., Any] = staticmethod(_STOCK_TRAIN)  # type: ignore[assignment]
    matrices: Callable[..., Any] = staticmethod(_STOCK_BUILDER)  # type: ignore[assignment]

    def _fit(self, dataset: DataFrame):
        _globals_lock.acquire()
        fit = _this_fit.fit = _Fit()
        _core.worker_train = self.worker_train  # type: ignore[attr-defined]
        _core.create_dmatrix_from_partitions = self.matrices  # type: ignore[attr-defined]
        finished = False
        try:
            model = super()._fit(dataset)  # type: ignore[misc]
            finished = True
            return model
        finally:
            _this_fit.fit = None
            fit.release_globals()
            if fit.tracker is not None:
                fit.tracker.close(finished=finished)

    def _get_tracker_args(self, spark_session: Any) -> tuple[bool, dict[str, Any]]:
        """xgboost.spark's own choice (on the driver unless Connect or launch_tracker_on_driver says
        otherwise) and worker arguments, with the driver's tracker a DriverTracker that `_fit` stops."""
        on_driver = (self.getOrDefault(self.launch_tracker_on_driver)  # type: ignore[attr-defined]
                     if self.isDefined(self.launch_tracker_on_driver)  # type: ignore[attr-defined]
                     else not is_connect_session(spark_session))
        fit = getattr(_this_fit, "fit", None)
        if not on_driver or fit is None:  # on a worker, or called outside `_fit` (which stops it)
            return super()._get_tracker_args(spark_session)  # type: ignore[misc]
        conf = (self.getOrDefault(self.coll_cfg) if self.isDefined(self.coll_cfg)  # type: ignore[attr-defined]
                else CollectiveConfig())
        host = conf.tracker_host_ip or spark_session.conf.get("spark.driver.host", None)
        tracker = DriverTracker(host, self.getOrDefault(self.num_workers),  # type: ignore[attr-defined]
                                conf.tracker_port or 0)
        fit.tracker = tracker
        return True, dict(tracker.worker_args)

    def _prepare_input(self, dataset: DataFrame) -> tuple[DataFrame, Any]:
        prepared, feature_prop = super()._prepare_input(dataset)  # type: ignore[misc]
        session = prepared.sparkSession
        # xgboost.spark (3.3+) leaves launch_tracker_on_driver undefined and takes it as "not Connect".
        on_driver = (self.getOrDefault(self.launch_tracker_on_driver)  # type: ignore[attr-defined]
                     if self.isDefined(self.launch_tracker_on_driver) else True)  # type: ignore[attr-defined]
        quick = not self._run_on_gpu(session) and on_driver  # type: ignore[attr-defined]
        fit = getattr(_this_fit, "fit", None)
        pickled = fit.release_globals if fit is not None else (lambda: None)
        return _training_job_frame(prepared, wait_free=quick, pickled=pickled), feature_prop

    def _get_xgb_parameters(self, dataset: DataFrame) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        booster, train_call, dmatrix = super()._get_xgb_parameters(dataset)  # type: ignore[misc]
        if self.threads:
            booster["nthread"] = dmatrix["nthread"] = self.threads
        return booster, train_call, dmatrix


def _training_job_frame(prepared: DataFrame, *, wait_free: bool, pickled: Callable[[], None]) -> DataFrame:
    """`prepared` as a frame whose `mapInPandas` (xgboost.spark's training job, the one it makes on
    this frame) runs the function `without_barrier_waits` when `wait_free`, and calls `pickled` once
    the classic `mapInPandas` has pickled the function (with the worker globals then in place)."""
    from pyspark.sql.classic.dataframe import DataFrame as ClassicDataFrame

    class TrainingJobFrame(ClassicDataFrame):
        def mapInPandas(self, func: Any, schema: Any, barrier: bool = False, profile: Any = None) -> DataFrame:
            try:
                return super().mapInPandas(without_barrier_waits(func) if wait_free else func, schema, barrier,
                                           profile)
            finally:
                pickled()

    return TrainingJobFrame(prepared._jdf, prepared.sparkSession)  # type: ignore[attr-defined]


def without_barrier_waits(func: Any) -> Any:
    """`func` (a barrier task's function) with the task context's `barrier()` returning at once and
    `allGather(message)` returning every task's message as this task's: only for functions whose
    messages are the same on every task and which meet elsewhere (xgboost's tracker on the driver,
    a CPU fit; see train/fit.py's module doc)."""

    def run(batches: Any) -> Any:
        from pyspark import BarrierTaskContext  # on the worker

        context = BarrierTaskContext.get()
        tasks = len(context.getTaskInfos())
        context.barrier = lambda: None  # type: ignore[method-assign]
        context.allGather = lambda message="": [message] * tasks  # type: ignore[method-assign]
        try:
            yield from func(batches)
        finally:
            del context.barrier, context.allGather

    return run


class _Regressor(_LakeboostWorkers, SparkXGBRegressor):
    """SparkXGBRegressor with lakeboost's workers."""


class _KnownClassesClassifier(_LakeboostWorkers, SparkXGBClassifier):
    """SparkXGBClassifier with lakeboost's workers, told its number of classes (the fit skips its
    counting pass)."""

    num_classes = 2

    def _get_distributed_train_params(self, dataset: DataFrame) -> dict[str, Any]:
        # SparkXGBClassifier's own version, less `dataset.select(countDistinct(label)).collect()`.
        params = self._gen_xgb_params_dict()
        fit_params = self._gen_fit_params_dict()
        params["verbose_eval"] = fit_params.pop("verbose", None)
        params.update(fit_params)
        if self.num_classes <= 2:
            params["objective"] = "binary:logistic"
        else:
            params.update(objective="multi:softprob", num_class=self.num_classes)
        params["num_boost_round"] = self.getOrDefault("n_estimators")
        return params


def estimator(path: PathChoice, params: dict[str, Any], *, classification: bool, num_classes: int = 2,
              threads: int | None = None, train: Callable[..., Any] | None = None,
              matrices: Callable[[MatrixRequest], Any] | None = None) -> Any:
    """The xgboost.spark estimator for `path`: on the borrowed path lakeboost's workers (`train`
    called as xgboost.train, watching the validation rows only; `matrices` building a worker's
    (train, valid) from a MatrixRequest; `threads` per worker); on the stock path the plain
    SparkXGBClassifier/Regressor, which ignores the three."""
    if not path.borrowed:
        return SparkXGBClassifier(**params) if classification else SparkXGBRegressor(**params)
    workers: Any = _KnownClassesClassifier(**params) if classification else _Regressor(**params)
    if classification:
        workers.num_classes = num_classes
    workers.threads = threads
    workers.worker_train = validation_only(train or xgboost.train)
    workers.matrices = as_xgboost_spark_builder(matrices) if matrices is not None else _STOCK_BUILDER
    return workers
