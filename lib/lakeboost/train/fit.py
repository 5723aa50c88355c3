"""The distributed fit: an xgboost.spark estimator from config, retried as a whole on failure.

Spark does not retry a failed barrier stage task by task; lakeboost re-runs the whole fit
(`fit_retries` times) and then fails with the cause, rather than hanging.

Two things xgboost.spark (3.2) does that are not training are left out (bench/bench_train.py
measures both): it evaluates the eval metric on the *training* rows every round besides the
validation rows (at 500k rows and aucpr, a sort of the whole partition per round, for a curve
lakeboost never reads: early stopping watches validation), and a classifier counts the label's
distinct values with a Spark job over the data before the fit (the trainer has counted them).
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from contextlib import contextmanager
from typing import Any

import xgboost
import xgboost.spark.core as xgboost_spark_core
from pyspark.sql import DataFrame
from xgboost.spark import SparkXGBClassifier, SparkXGBRegressor

from lakeboost.config.training import ModelConfig
from lakeboost.errors import TrainingError
from lakeboost.spark.diagnostics import root_cause

log = logging.getLogger(__name__)
DEFAULT_EVAL_METRIC = {"binary:logistic": "aucpr", "multi:softprob": "mlogloss",
                       "reg:squarederror": "rmse", "reg:absoluteerror": "mae"}


def is_classification(objective: str) -> bool:
    return objective.startswith(("binary:", "multi:"))


def estimator_params(model: ModelConfig, *, features: list[str], label: str, overrides: dict[str, Any] | None = None,
                     scale_pos_weight: float | None = None, weight_col: str | None = None) -> dict[str, Any]:
    """Keyword arguments for the xgboost.spark estimator (config params, then overrides)."""
    params: dict[str, Any] = {
        "features_col": features, "label_col": label, "num_workers": model.num_workers, "device": model.device,
        "objective": model.objective, "n_estimators": model.n_estimators,
        "eval_metric": model.eval_metric or DEFAULT_EVAL_METRIC[model.objective],
        "validation_indicator_col": "is_valid", "random_state": model.seed,
        # lakeboost lays out the partitions (every worker gets every class and validation rows).
        "force_repartition": False,
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
    return params


class _WorkerThreads:
    """An xgboost.spark estimator whose workers train with `threads` threads (None: spark.task.cpus)."""

    threads: int | None = None

    def _get_xgb_parameters(self, dataset: DataFrame) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        booster, train_call, dmatrix = super()._get_xgb_parameters(dataset)  # type: ignore[misc]
        if self.threads:
            booster["nthread"] = dmatrix["nthread"] = self.threads
        return booster, train_call, dmatrix


class LakeboostRegressor(_WorkerThreads, SparkXGBRegressor):
    """SparkXGBRegressor with lakeboost's worker threads."""


class KnownClassesClassifier(_WorkerThreads, SparkXGBClassifier):
    """SparkXGBClassifier told its number of classes, so the fit skips its counting pass."""

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


def train_on_validation_rows(params: dict[str, Any], dtrain: Any, *args: Any, evals: Any = (),
                             **kwargs: Any) -> Any:
    """`xgboost.train` as a worker runs it, watching the validation rows only (see the module doc)."""
    watched = [(matrix, name) for matrix, name in evals or () if name != "training"]
    return xgboost.train(params, dtrain, *args, evals=watched, **kwargs)


# xgboost.spark sorts its parameters into train() keywords and booster parameters by the worker
# function's signature (num_boost_round, early_stopping_rounds...): it must read as train()'s.
train_on_validation_rows.__signature__ = inspect.signature(xgboost.train)  # type: ignore[attr-defined]


_XGBOOST_WORKER_TRAIN = xgboost_spark_core.worker_train  # type: ignore[attr-defined]
_worker_train_lock = threading.Lock()
_fits_running = 0


@contextmanager
def validation_only_evaluation():
    """Workers call `train_on_validation_rows` instead of `xgboost.train` for fits started inside.

    xgboost.spark's worker function reads the module global `worker_train` when the fit's
    closure is pickled (by reference: lakeboost is importable on every executor); a counter
    restores it once the last of concurrent fits (tuning trials in threads) has started.
    """
    global _fits_running
    with _worker_train_lock:
        if _fits_running == 0:
            xgboost_spark_core.worker_train = train_on_validation_rows  # type: ignore[attr-defined]
        _fits_running += 1
    try:
        yield
    finally:
        with _worker_train_lock:
            _fits_running -= 1
            if _fits_running == 0:
                xgboost_spark_core.worker_train = _XGBOOST_WORKER_TRAIN  # type: ignore[attr-defined]


def worker_threads(configured: int | None, *, master: str, task_slots: int, num_workers: int) -> int | None:
    """Threads per xgboost worker: as configured; on a local master the slots shared among the
    workers; else None (xgboost.spark then uses spark.task.cpus)."""
    if configured is not None:
        return configured
    if master.startswith("local"):
        return max(1, task_slots // max(num_workers, 1))
    return None


def fit_with_retries(data: DataFrame, params: dict[str, Any], *, objective: str, retries: int,
                     num_classes: int = 2, threads: int | None = None):
    """Fit, retrying the whole fit up to `retries` times; raise TrainingError with the cause."""
    last_error = ""
    for attempt in range(retries + 1):
        started = time.monotonic()
        try:
            if is_classification(objective):
                estimator: Any = KnownClassesClassifier(**params)
                estimator.num_classes = num_classes
            else:
                estimator = LakeboostRegressor(**params)
            estimator.threads = threads
            with one_arrow_batch_per_partition(data.sparkSession), validation_only_evaluation():
                model = estimator.fit(data)
            log.info("xgboost fit %d took %.1fs", attempt + 1, time.monotonic() - started)
            return model
        except (ValueError, TypeError) as exc:  # parameter errors: retrying cannot help
            raise TrainingError(f"xgboost rejected the parameters: {exc}") from None
        except Exception as exc:
            last_error = root_cause(exc)
            log.warning("xgboost fit attempt %d/%d failed after %.1fs: %s", attempt + 1, retries + 1,
                        time.monotonic() - started, last_error)
    raise TrainingError(f"xgboost fit failed {retries + 1} time(s); last error: {last_error}")


@contextmanager
def one_arrow_batch_per_partition(spark):
    """xgboost.spark 3.2 builds each worker's DMatrix from Arrow batches and fails
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
