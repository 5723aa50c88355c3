"""Trial evaluators for the two tuning strategies.

single_node: the (small) training data is broadcast once; a batch of k configurations runs
as one Spark job of k tasks, each a plain single-node `xgboost.train` (what SparkTrials does,
without its one-job-per-trial overhead). Over Spark Connect (no SparkContext: no broadcast, no
RDD) the job is a `mapInPandas` over k one-row partitions, with the matrices pickled into the
function: sent with every batch's plan rather than once, which the strategy's size limit
(training.tune.single_node_max_mb) keeps small.
distributed: each configuration is a full xgboost.spark fit; k of them run from driver
threads, where k is what the free task slots admit (k x num_workers <= slots), so no trial
waits half-scheduled on barrier slots.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeboost.config.training import TrainingConfig
from lakeboost.features.splits import SPLIT
from lakeboost.features.training_set import TrainingSet
from lakeboost.spark.diagnostics import root_cause
from lakeboost.spark.kind import is_connect
from lakeboost.train.preflight import master_of
from lakeboost.tune.search import TrialOutcome

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Matrices:
    """Encoded train/validation matrices for single-node trials (float32)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    features: list[str]
    feature_types: list[str] | None = None  # xgboost's ("c": native categorical codes); None: all numbers


def collect_matrices(encoded: DataFrame, *, features: list[str], label: str,
                     feature_types: list[str] | None = None) -> Matrices:
    """Bring train and validation rows to the driver: only called when `auto` (or the user)
    judged them small enough for one executor, which single-node trials need anyway."""
    def matrix(split: str) -> tuple[np.ndarray, np.ndarray]:
        frame = cast("pd.DataFrame", encoded.filter(F.col(SPLIT) == split).select(
            *[F.col(c).cast("float").alias(c) for c in features], F.col(label).cast("float").alias("__y")
        ).toPandas())
        return frame[features].to_numpy(dtype=np.float32, na_value=np.nan), frame["__y"].to_numpy(np.float32)

    x_train, y_train = matrix("train")
    x_valid, y_valid = matrix("valid")
    return Matrices(x_train, y_train, x_valid, y_valid, features, feature_types)


def single_node_evaluator(spark, matrices: Matrices, *, base_params: dict[str, Any], n_estimators: int,
                          early_stopping_rounds: int | None, metric: str):
    """An evaluator running each configuration as one Spark task over broadcast matrices (over
    Connect: matrices sent with the job, see the module doc)."""
    if is_connect(spark):
        log.info("single-node trials over Spark Connect: one mapInPandas task per trial, the matrices sent with "
                 "each batch (no broadcast without a SparkContext)")
        return _dataframe_single_node_evaluator(spark, matrices, base_params=base_params, n_estimators=n_estimators,
                                                early_stopping_rounds=early_stopping_rounds, metric=metric)
    data = spark.sparkContext.broadcast(matrices)

    def evaluate(batch: Sequence[dict[str, Any]]) -> list[TrialOutcome]:
        configs = [(i, {**base_params, **params}) for i, params in enumerate(batch)]
        job = spark.sparkContext.parallelize(configs, len(configs)).map(
            lambda item: (item[0], fit_single_node(data.value, item[1], n_estimators, early_stopping_rounds,
                                                   metric)))
        results = dict(job.collect())  # one small tuple per trial
        return [results[i] for i in range(len(batch))]

    return evaluate


OUTCOME_SCHEMA = "trial int, metric double, rounds int, seconds double, error string"


def _dataframe_single_node_evaluator(spark, matrices: Matrices, *, base_params: dict[str, Any], n_estimators: int,
                                     early_stopping_rounds: int | None, metric: str):
    """single_node_evaluator without a SparkContext: trial i runs in partition i of a range."""

    def evaluate(batch: Sequence[dict[str, Any]]) -> list[TrialOutcome]:
        configs = [{**base_params, **params} for params in batch]

        def run(frames):
            import pandas as pd  # on the worker

            for frame in frames:
                for trial in frame["id"]:
                    outcome = fit_single_node(matrices, configs[int(trial)], n_estimators, early_stopping_rounds,
                                              metric)
                    yield pd.DataFrame({"trial": [int(trial)], "metric": [outcome.metric], "rounds": [outcome.rounds],
                                        "seconds": [outcome.seconds], "error": [outcome.error]})

        rows = spark.range(0, len(configs), 1, numPartitions=len(configs)).mapInPandas(run, OUTCOME_SCHEMA).collect()
        results = {row.trial: TrialOutcome(row.metric, row.rounds, row.seconds, row.error) for row in rows}
        return [results[i] for i in range(len(batch))]

    return evaluate


def fit_single_node(m: Matrices, params: dict[str, Any], n_estimators: int, early_stopping: int | None,
                    metric: str) -> TrialOutcome:
    import xgboost as xgb  # imported on the executor

    started = time.monotonic()
    try:
        typed = {"feature_types": m.feature_types, "enable_categorical": True} if m.feature_types else {}
        train = xgb.DMatrix(m.x_train, label=m.y_train, feature_names=m.features, **typed)
        valid = xgb.DMatrix(m.x_valid, label=m.y_valid, feature_names=m.features, **typed)
        booster = xgb.train({**params, "nthread": 1}, train, num_boost_round=n_estimators,
                            evals=[(valid, "valid")], early_stopping_rounds=early_stopping, verbose_eval=False)
        rounds = booster.best_iteration + 1 if early_stopping else booster.num_boosted_rounds()
        scores = booster.predict(valid, iteration_range=(0, rounds))
        return TrialOutcome(native_metric(metric, m.y_valid, scores), rounds, time.monotonic() - started)
    except Exception as exc:  # a bad configuration fails its trial, not the search
        return TrialOutcome(None, 0, time.monotonic() - started, str(exc)[:300])


def native_metric(metric: str, y: np.ndarray, predicted: np.ndarray) -> float:
    """A validation metric of a single-node booster's predictions (probabilities of the positive
    class, class probabilities, or values), named as in lakeboost.config.metrics."""
    from sklearn import metrics as skm

    if predicted.ndim == 2:  # multiclass: one probability per class
        labels = list(range(predicted.shape[1]))
        chosen = predicted.argmax(axis=1)
        multiclass = {"log_loss": lambda: skm.log_loss(y, predicted, labels=labels),
                      "accuracy": lambda: skm.accuracy_score(y, chosen),
                      "macro_f1": lambda: skm.f1_score(y, chosen, average="macro")}
        return float(multiclass[metric]())
    computed = {
        "pr_auc": lambda: skm.average_precision_score(y, predicted), "roc_auc": lambda: skm.roc_auc_score(y, predicted),
        "log_loss": lambda: skm.log_loss(y, predicted, labels=[0, 1]),
        "brier": lambda: skm.brier_score_loss(y, predicted),
        "rmse": lambda: float(np.sqrt(skm.mean_squared_error(y, predicted))),
        "mae": lambda: skm.mean_absolute_error(y, predicted), "r2": lambda: skm.r2_score(y, predicted),
    }
    if metric not in computed:
        raise ValueError(f"single-node trials cannot compute {metric!r}; use one of {sorted(computed)}")
    return float(computed[metric]())


def distributed_trial_config(training: TrainingSet, cfg: TrainingConfig, *, concurrency: int) -> TrainingConfig:
    """The training config of one distributed trial: trial_n_estimators rounds, no fit retries."""
    tune = cfg.tune
    # Concurrent trials on a local master share its cores: one thread per task slot, as on a
    # cluster (left unset, each trial's workers would take all the slots: train.fit.worker_threads).
    master = master_of(training.df.sparkSession)
    threads = cfg.model.worker_threads or (1 if concurrency > 1 and master.startswith("local") else None)
    return cfg.model_copy(update={"model": cfg.model.model_copy(update={
        "n_estimators": tune.trial_n_estimators if tune else cfg.model.n_estimators, "fit_retries": 0,
        "worker_threads": threads})})


def distributed_evaluator(training: TrainingSet, cfg: TrainingConfig, *, concurrency: int, metric: str):
    """An evaluator running each configuration as an xgboost.spark fit from a driver thread."""
    from lakeboost.train.trainer import train_model

    trial_cfg = distributed_trial_config(training, cfg, concurrency=concurrency)

    def one(params: dict[str, Any]) -> TrialOutcome:
        started = time.monotonic()
        try:
            result = train_model(training, trial_cfg, param_overrides=params, evaluate_test=False)
            result.release()
            return TrialOutcome(result.metrics["valid"][metric], result.rounds, time.monotonic() - started)
        except Exception as exc:
            return TrialOutcome(None, 0, time.monotonic() - started, root_cause(exc))

    def evaluate(batch: Sequence[dict[str, Any]]) -> list[TrialOutcome]:
        with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="trial") as pool:
            return list(pool.map(one, batch))

    return evaluate
