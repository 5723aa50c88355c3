"""Train one model on a training set: split, encode, weigh, lay out, pre-flight, fit, evaluate."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeboost.borrowed.xgboost_spark import ALIAS as XGB_ALIAS
from lakeboost.borrowed.xgboost_spark import fit_path
from lakeboost.config.training import TrainingConfig
from lakeboost.errors import TrainingError
from lakeboost.features.splits import SPLIT, split_examples
from lakeboost.features.training_set import TrainingSet
from lakeboost.metrics.base import LABEL
from lakeboost.metrics.binary import BinaryCurve
from lakeboost.metrics.binary_splits import evaluate_binary_splits
from lakeboost.metrics.calibration import CalibrationSummary
from lakeboost.metrics.multiclass import multiclass_metrics
from lakeboost.metrics.regression import regression_metrics
from lakeboost.model.calibrator import Calibrator
from lakeboost.model.encodings import Encodings
from lakeboost.model.loss import LossModel
from lakeboost.spark.kind import is_connect, unavailable_on_connect
from lakeboost.train.calibrate import CalibrationChoice, choose_calibrator
from lakeboost.train.checkpoint import CheckpointStore, checkpoint_root
from lakeboost.train.fit import (
    FitAttempt,
    FitPhases,
    estimator_params,
    fit_with_retries,
    is_classification,
    rounds_used,
    worker_threads,
)
from lakeboost.train.preflight import check_barrier, check_worker_threads, cluster_resources, master_of, preflight
from lakeboost.train.prepare import (
    VALID,
    class_counts,
    layout_for_workers,
    layout_problems,
    partition_counts,
    prepare_examples,
)
from lakeboost.train.worker_files import (
    WorkerFileReader,
    file_layout,
    files_directory,
    placeholder,
    remove,
    write_worker_files,
)

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    model: Any  # SparkXGBClassifierModel / SparkXGBRegressorModel
    features: list[str]
    threshold: float | None
    metrics: dict[str, dict[str, float]]
    params: dict[str, Any]
    rounds: int
    seconds: float
    split_counts: dict[str, dict[int, int]]
    curves: dict[str, BinaryCurve] = field(default_factory=dict)
    predictions: dict[str, DataFrame] = field(default_factory=dict)
    encodings: Encodings = field(default_factory=dict)  # column -> category -> training frequency
    calibrator: Calibrator | None = None  # binary models: raw score -> probability
    calibration: dict[str, dict[str, CalibrationSummary]] = field(default_factory=dict)  # split -> raw/calibrated
    calibration_choice: CalibrationChoice | None = None  # binary models: which calibrator, and why
    cached: list[DataFrame] = field(default_factory=list)
    fit_phases: FitPhases | None = None  # where the fit's `seconds` went
    attempts: list[FitAttempt] = field(default_factory=list)  # the fit's tries (a retry may resume)
    loss_model: LossModel | None = None  # regression models: the monitor's loss estimate (train.loss)

    def release(self) -> None:
        """Drop the cached predictions (a tuning trial's or a fold's result is read once; without
        this, every trial would keep its caches until the session ends)."""
        for predictions in self.cached:
            predictions.unpersist()


def train_model(training: TrainingSet, cfg: TrainingConfig, *,
                param_overrides: dict[str, Any] | None = None, evaluate_test: bool = True,
                merge_validation: bool = False, splits: DataFrame | None = None) -> TrainResult:
    """Fit on train (early stopping on validation) and evaluate on validation and test.

    `merge_validation` fits on train + validation with a fixed number of rounds (the final
    refit after tuning); validation metrics are then in-sample, test stays honest. `splits`:
    the examples with their split column already assigned (a cross-validation fold; rows of
    any other split than train, valid and test are left out of the fit).
    """
    spark = training.df.sparkSession
    objective = cfg.model.objective
    key, label = training.key, training.label
    resources = cluster_resources(spark)
    check_barrier(resources, num_workers=cfg.model.num_workers)  # before any Spark job
    if cfg.model.worker_data == "files" and is_connect(spark):
        raise unavailable_on_connect(
            "training.model.worker_data=files (the xgboost workers reading their rows from files)",
            "Set training.model.worker_data to auto or spark: over Connect the rows reach the workers "
            "through xgboost.spark's own Arrow stream")
    # Where a checkpointed fit saves its boosters: refused here, before any Spark job, when a cluster has none.
    checkpoints = CheckpointStore(checkpoint_root(cfg.model.worker_files_dir, master=master_of(spark))) \
        if cfg.model.checkpoint_every and not is_connect(spark) else None
    examples = (splits if splits is not None else split_examples(training, cfg)).persist()
    try:
        counts = class_counts(examples, label=label)
        prepared = prepare_examples(examples, counts, training, cfg)
        is_valid = F.lit(False) if merge_validation else F.col(SPLIT) == "valid"
        encoded = prepared.encoded.withColumn(VALID, is_valid)
        features = list(training.feature_columns)
        fit_rows = sum(sum(counts.get(s, {}).values()) for s in ("train", "valid"))
        preflight(resources, num_workers=cfg.model.num_workers, rows=fit_rows,
                  features=len(features), max_memory_fraction=cfg.max_memory_fraction)
        threads = worker_threads(cfg.model.worker_threads, master=master_of(spark),
                                 task_slots=resources.task_slots, num_workers=cfg.model.num_workers)
        fitted_rows = encoded.filter(F.col(SPLIT).isin("train", "valid"))
        laid_out = layout_for_workers(fitted_rows, num_workers=cfg.model.num_workers, label=label, key=key,
                                      stratify_label=is_classification(objective))
        params = estimator_params(cfg.model, features=features, label=label, overrides=param_overrides,
                                  scale_pos_weight=prepared.weight, categorical=prepared.native)
        if merge_validation:
            params.pop("validation_indicator_col", None)
            params.pop("early_stopping_rounds", None)
        path = fit_path(laid_out)
        if path.borrowed:  # the threads are lakeboost's to give (the stock path: spark.task.cpus)
            check_worker_threads(spark, threads=threads, num_workers=cfg.model.num_workers)
        with _worker_data(laid_out, cfg, params, merge_validation=merge_validation,
                          files=path.borrowed) as (fit_data, reader):
            started = time.monotonic()
            try:
                model, phases, attempts = fit_with_retries(
                    fit_data, params, objective=objective, retries=cfg.model.fit_retries, path=path,
                    num_classes=1 + max([*counts["train"], *counts["valid"]]), threads=threads,
                    worker_files=reader, checkpoints=checkpoints, checkpoint_every=cfg.model.checkpoint_every,
                    curve_rows=cfg.model.train_curve_rows)
            finally:
                if checkpoints is not None:
                    checkpoints.remove()
            seconds = time.monotonic() - started
        result = TrainResult(model, features, None, {}, params, rounds_used(model), seconds, counts,
                             encodings=prepared.encodings, fit_phases=phases, attempts=attempts)
        _evaluate(result, encoded, cfg, label=label, evaluate_test=evaluate_test, key=key,
                  order=training.event_time)
        return result
    finally:
        examples.unpersist()


@contextmanager
def _worker_data(laid_out: DataFrame, cfg: TrainingConfig, params: dict[str, Any], *,
                 merge_validation: bool, files: bool) -> Iterator[tuple[DataFrame, WorkerFileReader | None]]:
    """The fit's input and, when the workers read files, their reader (worker_files.py; only
    where `files`, the borrowed fit path, never over Connect); the layout is checked first (every worker needs both
    classes and validation rows), and the cache or the files are gone afterwards."""
    spark = laid_out.sparkSession
    num_workers, label = cfg.model.num_workers, params["label_col"]
    classes = 2 if is_classification(cfg.model.objective) else 1
    directory = files_directory(cfg.model.worker_files_dir, mode=cfg.model.worker_data,
                                master=master_of(spark)) if files else None
    used = {params["label_col"]: XGB_ALIAS.label, params.get("validation_indicator_col"): XGB_ALIAS.valid,
            params.get("weight_col"): XGB_ALIAS.weight}
    aliases = {column: alias for column, alias in used.items() if column}
    if directory is None:
        cached = laid_out.persist()
        try:
            _check_layout(partition_counts(cached, label=label), num_workers=num_workers, classes=classes,
                          merge_validation=merge_validation)
            yield cached, None
        finally:
            cached.unpersist()
        return
    try:
        written = write_worker_files(laid_out, directory, features=params["features_col"],
                                     others=list(dict.fromkeys([label, VALID, *aliases])))
        _check_layout(file_layout(spark, written, label=label, valid=VALID), num_workers=num_workers,
                      classes=classes, merge_validation=merge_validation)
        yield placeholder(spark, num_workers, laid_out, written.columns), \
            WorkerFileReader(written, aliases, curve_rows=cfg.model.train_curve_rows)
    finally:
        remove(spark, directory)


def _check_layout(counts: DataFrame, *, num_workers: int, classes: int, merge_validation: bool) -> None:
    problems = layout_problems(counts, num_workers=num_workers, classes=classes,
                               need_validation=not merge_validation)
    if problems:
        raise TrainingError("cannot give every xgboost worker both classes and validation rows: "
                            + "; ".join(problems) + ". Use fewer workers or more data")


def score_column(predictions: DataFrame, objective: str) -> DataFrame:
    """Add `score` (positive-class probability) for binary models."""
    if objective == "binary:logistic":
        return predictions.withColumn("score", vector_to_array(F.col("probability"))[1])
    if objective == "multi:softprob":
        return predictions.withColumn("probabilities", vector_to_array(F.col("probability")))
    return predictions


RAW_SCORE = "raw_score"


def _evaluate(result: TrainResult, encoded: DataFrame, cfg: TrainingConfig, *, label: str,
              evaluate_test: bool, key: tuple[str, ...], order: str) -> None:
    objective = cfg.model.objective
    splits = ["valid", "test"] if evaluate_test else ["valid"]
    # Both splits scored in one pass and cached: the calibrator, the evaluation's aggregation and
    # the exact AUCs each read the predictions.
    scored = score_column(result.model.transform(encoded.filter(F.col(SPLIT).isin(splits))), objective) \
        .withColumn(LABEL, F.col(label)).cache()
    result.cached.append(scored)
    if objective == "binary:logistic":
        _evaluate_binary(result, scored, cfg, splits, key=key, order=order)
    for split in splits:
        predictions = scored.filter(F.col(SPLIT) == split)
        if objective == "multi:softprob":
            result.predictions[split] = predictions
            num_classes = int(result.model.get_booster().attr("num_class") or 0) or \
                len(result.split_counts.get("train", {}))
            result.metrics[split] = multiclass_metrics(predictions, num_classes=num_classes)
        elif objective != "binary:logistic":
            result.predictions[split] = predictions
            result.metrics[split] = regression_metrics(predictions)
    log.info("validation metrics %s", result.metrics.get("valid"))


def _evaluate_binary(result: TrainResult, scored: DataFrame, cfg: TrainingConfig, splits: list[str], *,
                     key: tuple[str, ...], order: str) -> None:
    """Calibrate on "valid" (with `auto`, a calibrator only where it beats the raw scores on
    held-out validation folds: train.calibrate.choose_calibrator), then every split's curve,
    threshold, metrics and calibration summaries from one aggregation (metrics/binary_splits.py).

    Calibrating on validation rows also used for early stopping is the usual compromise: the
    test split, never seen by either, is where the before/after figures are honest.
    """
    raw = scored.withColumnRenamed("score", RAW_SCORE)
    if cfg.calibration.method != "none":
        choice = choose_calibrator(raw.filter(F.col(SPLIT) == "valid"), cfg.calibration.method,
                                   folds=cfg.calibration.folds, metric=cfg.calibration.select_by,
                                   order=order if order in raw.columns else None, key=key,
                                   score=RAW_SCORE)
        result.calibration_choice, result.calibrator = choice, choice.calibrator
        log.info("%s", choice.describe())
    calibrated = raw.withColumn("score", result.calibrator.column(F.col(RAW_SCORE))
                                if result.calibrator is not None else F.col(RAW_SCORE))
    result.threshold, evaluations = evaluate_binary_splits(
        calibrated, splits, split_column=SPLIT, threshold=cfg.threshold, calibration_bins=cfg.calibration.bins,
        raw_score=RAW_SCORE)
    for split, evaluation in evaluations.items():
        result.predictions[split] = calibrated.filter(F.col(SPLIT) == split)
        result.curves[split] = evaluation.curve
        result.metrics[split] = evaluation.metrics
        result.calibration[split] = evaluation.calibration
