"""The distributed fit: an xgboost.spark estimator from config, retried as a whole on failure.

Spark does not retry a failed barrier stage task by task; lakeboost re-runs the whole fit
(`fit_retries` times) and then fails with the cause, rather than hanging.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Any

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


def fit_with_retries(data: DataFrame, params: dict[str, Any], *, objective: str, retries: int):
    """Fit, retrying the whole fit up to `retries` times; raise TrainingError with the cause."""
    estimator_cls = SparkXGBClassifier if is_classification(objective) else SparkXGBRegressor
    last_error = ""
    for attempt in range(retries + 1):
        started = time.monotonic()
        try:
            with one_arrow_batch_per_partition(data.sparkSession):
                model = estimator_cls(**params).fit(data)
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
