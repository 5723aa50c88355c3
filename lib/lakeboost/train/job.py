"""The train step: training set at pinned versions -> distributed fit -> MLflow run -> registry."""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession

from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.metrics import objective_kind
from lakeboost.config.model import LakeboostConfig
from lakeboost.config.training import TrainingConfig
from lakeboost.errors import TrainingError
from lakeboost.features.training_set import TrainingSet, build_training_set, current_training_set
from lakeboost.io.catalog import TableCatalog
from lakeboost.logs import StepSummary
from lakeboost.metrics import plots
from lakeboost.metrics.base import LABEL
from lakeboost.metrics.over_time import over_time
from lakeboost.model.artifact import log_model
from lakeboost.model.meta import ModelMeta
from lakeboost.model.tracking import use_tracking
from lakeboost.train.cross_validation import cross_validate
from lakeboost.train.loss import fit_loss_model
from lakeboost.train.preflight import check_barrier, cluster_resources
from lakeboost.train.tracking import log_common
from lakeboost.train.trainer import TrainResult, train_model

log = logging.getLogger(__name__)


def flat_metrics(result: TrainResult) -> dict[str, float]:
    return {f"{split}_{name}": float(value) for split, metrics in result.metrics.items()
            for name, value in metrics.items() if isinstance(value, (int, float))}


def log_plots(result: TrainResult, *, event_time: str, objective: str, label: str = "value") -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if objective_kind(objective) == "regression":
            for split, predictions in result.predictions.items():
                series = over_time(predictions, time=event_time)
                errors = result.metrics.get(split, {})
                figures = ", ".join(f"{m.upper()} {errors[m]:.4g}" for m in ("rmse", "mae") if m in errors)
                title = f"{split}: predicted and actual {label}" + (f" ({figures})" if figures else "")
                plots.plot_over_time(series, tmp, name=f"{split}_predictions_over_time", title=title, ylabel=label)
                plots.plot_over_time(series, tmp, name=f"{split}_predictions_last_14_days",
                                     title=f"{title}, last 14 days", ylabel=label, last_days=14)
        for split, curve in result.curves.items():
            split_dir = Path(tmp) / split
            split_dir.mkdir()
            plots.plot_roc_pr(curve, str(split_dir))
            plots.plot_calibration(result.calibration[split], str(split_dir))
            plots.plot_confusion(result.metrics[split], str(split_dir))
        gain = result.model.get_booster().get_score(importance_type="gain")
        plots.plot_feature_importance(gain, tmp)
        mlflow.log_artifacts(tmp, "plots")


def log_fit_record(result: TrainResult) -> None:
    """How the fit went, kept apart from the model's metrics (which MLflow charts and compares):
    its rounds as a parameter, its timings as a table (`fit_timings.json`: phase, seconds), a
    retried fit's attempts as a table (`fit_attempts.json`: the round each resumed from, its
    seconds, its error), and the learning curves as step metrics, `curve_<split>_<metric>` per
    boosting round, which MLflow draws as one line chart per metric: `valid` the curve early
    stopping watched, `train` the same metric on a fixed sample of each worker's training rows
    (`training.model.train_curve_rows`; the fit does not score every training row every round,
    bench_train). A resumed fit's curves hold every round, the checkpoint's and the resumed ones."""
    mlflow.log_param("boosting_rounds", result.rounds)
    phases = {name: value for name, value in asdict(result.fit_phases).items()
              if value is not None} if result.fit_phases is not None else {}
    timings = {"fit": result.seconds, **phases}
    mlflow.log_table({"phase": list(timings), "seconds": [round(v, 3) for v in timings.values()]},
                     "fit_timings.json")
    if len(result.attempts) > 1:
        mlflow.log_param("fit_attempts", len(result.attempts))
        mlflow.log_table({"resumed_from_round": [a.resumed_from for a in result.attempts],
                          "seconds": [round(a.seconds, 3) for a in result.attempts],
                          "error": [(a.error or "")[:500] for a in result.attempts]}, "fit_attempts.json")
    summary = getattr(result.model, "training_summary", None)
    histories = {"train": getattr(summary, "train_objective_history", None) or {},
                 "valid": getattr(summary, "validation_objective_history", None) or {}}
    now = int(time.time() * 1000)
    points = [Metric(f"curve_{split}_{metric}", float(value), now, step)
              for split, history in histories.items() for metric, values in history.items()
              for step, value in enumerate(values)]
    client, run = MlflowClient(), mlflow.active_run()
    assert run is not None
    for start in range(0, len(points), 1000):  # MLflow's batch limit
        client.log_batch(run.info.run_id, metrics=points[start:start + 1000])


def model_meta(result: TrainResult, training: TrainingSet, cfg: TrainingConfig) -> ModelMeta:
    return ModelMeta(result.features, result.encodings, result.threshold, cfg.model.objective, training.lineage(),
                     training.dataset.model_dump(mode="json"),
                     result.calibrator.to_dict() if result.calibrator is not None else None,
                     training.categorical_encoding,
                     loss_model=result.loss_model.to_dict() if result.loss_model is not None else None)


def fit_monitor_loss(result: TrainResult, config: LakeboostConfig, training: TrainingSet, *,
                     merge_validation: bool) -> None:
    """A regression model's loss model (lakeboost.train.loss), fitted on its validation predictions
    when `monitor.estimate_loss` is on; its seconds logged as `loss_model_seconds`. Not after a
    refit on train + validation: its validation errors are in-sample, and a loss model fitted on
    them would expect every window to do as well as the rows it learnt from."""
    if objective_kind(config.training.model.objective) != "regression" or not config.monitor.estimate_loss:
        return
    if merge_validation or "valid" not in result.predictions:
        log.info("no loss model: the model was refitted on its validation rows, whose errors are in-sample")
        return
    started = time.monotonic()
    try:
        result.loss_model = fit_loss_model(result.predictions["valid"], features=result.features, label=LABEL,
                                           prediction="prediction", order=training.event_time)
    except TrainingError as error:  # too few validation rows: the model stands, without an estimate
        log.warning("no loss model, the monitor will not estimate this model's error before its labels: %s", error)
        return
    mlflow.log_metric("loss_model_seconds", time.monotonic() - started)


def train_and_log(spark: SparkSession, config: LakeboostConfig, training: TrainingSet, *,
                  run_name: str = "train", tags: dict[str, str] | None = None, register: bool = True,
                  param_overrides: dict[str, Any] | None = None, nested: bool = False,
                  merge_validation: bool = False) -> tuple[str, TrainResult, int | None]:
    """Train on `training`, log everything to one MLflow run; return (run id, result, model version).

    A fit the cluster cannot schedule is refused before the run starts (no failed run is left).
    """
    cfg = config.training
    check_barrier(cluster_resources(spark), num_workers=cfg.model.num_workers)
    use_tracking(config)
    with mlflow.start_run(run_name=run_name, tags=tags or {}, nested=nested) as run:
        log_common(config, lineage=training.lineage())
        if cfg.cross_validation.folds:
            folds = cross_validate(training, cfg, param_overrides=param_overrides)
            mlflow.log_metrics(folds.as_metrics())
            mlflow.log_dict({"folds": folds.folds, "split_kind": cfg.split.kind}, "cross_validation.json")
        result = train_model(training, cfg, param_overrides=param_overrides, merge_validation=merge_validation)
        fit_monitor_loss(result, config, training, merge_validation=merge_validation)
        loggable = {k: v for k, v in result.params.items() if k != "features_col"}
        mlflow.log_params({k: str(v)[:500] for k, v in loggable.items()})
        mlflow.log_metrics({**flat_metrics(result), **({"threshold": result.threshold}
                                                       if result.threshold is not None else {})})
        log_fit_record(result)
        mlflow.log_dict({s: {str(k): v for k, v in c.items()} for s, c in result.split_counts.items()},
                        "split_counts.json")
        if result.calibration_choice is not None:  # which calibrator, and the held-out losses that chose it
            mlflow.log_param("calibration", result.calibration_choice.method)
            mlflow.log_metrics(result.calibration_choice.figures())
            mlflow.log_dict(result.calibration_choice.as_dict(), "calibration_choice.json")
        log_plots(result, event_time=training.event_time, objective=cfg.model.objective,
                  label=training.dataset.label_column)
        version = log_model(result.model, model_meta(result, training, cfg),
                            registered_model=cfg.tracking.registered_model if register else None)
        return run.info.run_id, result, version


def train_step(catalog: TableCatalog, config: LakeboostConfig) -> StepSummary:
    ts = config.gold.training_set
    assert ts is not None, "the train step requires gold.training_set (lakeboost.steps.check_steps)"
    training = current_training_set(catalog, ts, config.require_dataset)
    try:
        run_id, result, version = train_and_log(catalog.spark, config, training)
    finally:
        training.df.unpersist()  # a fresh build comes back persisted; a stored set is not cached
    return summary_of(run_id, result, version, training)


def replay_step(catalog: TableCatalog, config: LakeboostConfig, run_id: str) -> StepSummary:
    """Rebuild the recorded training set by time travel and retrain with the recorded config."""
    use_tracking(config)
    recorded = mlflow.artifacts.load_dict(f"runs:/{run_id}/config.json")
    lineage = mlflow.artifacts.load_dict(f"runs:/{run_id}/lineage.json")
    replayed_training = TrainingConfig.model_validate(recorded["training"])
    # Validated as the whole gold section, so `warm_up: auto` resolves against the recorded features.
    replayed_set = type(config.gold).model_validate(recorded["gold"]).training_set
    assert replayed_set is not None, "the recorded run has no gold.training_set"
    # The dataset description the run was trained with (its lineage), not today's config.
    replayed_dataset = DatasetConfig.model_validate(lineage["dataset"])
    replayed = config.model_copy(update={
        "training": replayed_training, "dataset": replayed_dataset,
        "gold": config.gold.model_copy(update={"training_set": replayed_set}),
    })
    training = build_training_set(catalog, replayed_set, replayed_dataset, versions=lineage["versions"],
                                  cutoff=dt.datetime.fromisoformat(lineage["cutoff"]))
    try:
        new_run, result, version = train_and_log(catalog.spark, replayed, training, run_name="replay",
                                                 tags={"replay_of": run_id}, register=False)
    finally:
        training.df.unpersist()
    original = mlflow.get_run(run_id).data.metrics
    summary = summary_of(new_run, result, version, training)
    summary.details["replay_of"] = run_id
    summary.details["original_metrics"] = {k: v for k, v in original.items() if k.startswith(("valid_", "test_"))}
    log.info("replay of %s: %s", run_id, json.dumps({
        "original": {k: v for k, v in original.items() if k.startswith("test_")},
        "replayed": {k: v for k, v in result.metrics.get("test", {}).items() if isinstance(v, (int, float))}}))
    return summary


def summary_of(run_id: str, result: TrainResult, version: int | None, training: TrainingSet) -> StepSummary:
    summary = StepSummary("train", rows_read=sum(sum(c.values()) for c in result.split_counts.values()))
    summary.details.update({"run_id": run_id, "model_version": version, "rounds": result.rounds,
                            "fit_seconds": round(result.seconds, 2), "threshold": result.threshold,
                            "metrics": result.metrics, "lineage": training.lineage()["versions"]})
    return summary
