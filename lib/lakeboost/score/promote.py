"""Promotion and rollback of the `champion` alias, each decision recorded as an MLflow run.

A challenger is compared with the champion on the same pinned snapshot: the challenger's
training set rebuilt at the Delta versions and cutoff it recorded, test split only, each model
with its own stored encodings. It is promoted only if it wins by `min_gain`.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging

import mlflow
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeboost.config.metrics import improvement, metric_for, objective_kind
from lakeboost.config.model import LakeboostConfig
from lakeboost.errors import ModelNotFoundError
from lakeboost.features.splits import SPLIT, split_examples
from lakeboost.features.training_set import build_training_set
from lakeboost.io.catalog import TableCatalog
from lakeboost.logs import StepSummary
from lakeboost.metrics.base import LABEL
from lakeboost.metrics.binary import binary_metrics
from lakeboost.metrics.multiclass import multiclass_metrics
from lakeboost.metrics.regression import regression_metrics
from lakeboost.model import Model, load_model, use_tracking
from lakeboost.model.registry import (
    CHALLENGER,
    CHAMPION,
    HISTORY_TAG,
    champion_history,
    current_alias,
    set_alias,
)
from lakeboost.spark.rows import first_row

log = logging.getLogger(__name__)


def compare_on_snapshot(catalog: TableCatalog, config: LakeboostConfig, champion: int, challenger: int
                        ) -> dict[str, dict[str, float]]:
    name = config.training.tracking.registered_model
    models = {"champion": load_model(name, str(champion)), "challenger": load_model(name, str(challenger))}
    lineage = models["challenger"].meta.lineage
    ts = config.gold.training_set
    assert ts is not None, "the promote step requires gold.training_set (lakeboost.steps.check_steps)"
    dataset = models["challenger"].dataset
    training = build_training_set(catalog, ts, dataset,
                                  versions=lineage["versions"], cutoff=dt.datetime.fromisoformat(lineage["cutoff"]))
    test = split_examples(training, config.training).filter(F.col(SPLIT) == "test").cache()
    results = {}
    try:
        for role, loaded in models.items():
            scored = loaded.predict(test.withColumnRenamed(dataset.label_column, LABEL), keep=(*dataset.key, LABEL))
            results[role] = snapshot_metrics(scored, loaded)
    finally:
        test.unpersist()
        training.df.unpersist()
    return results


def snapshot_metrics(scored: DataFrame, loaded: Model) -> dict[str, float]:
    """The metrics of one model's predictions on the snapshot, for its objective."""
    kind = objective_kind(loaded.meta.objective)
    if kind == "regression":
        return regression_metrics(scored.withColumnRenamed("score", "prediction"))
    if kind == "multiclass":
        scored = scored.cache()  # read twice: the class count, then the metrics
        num_classes = first_row(scored.agg(F.max(F.size("probabilities"))))[0]
        metrics = multiclass_metrics(scored, num_classes=int(num_classes or 0), prediction="predicted_label")
        scored.unpersist()
        return metrics
    return binary_metrics(scored, threshold=loaded.meta.threshold or 0.5)


def promote_step(catalog: TableCatalog, config: LakeboostConfig) -> StepSummary:
    name = config.training.tracking.registered_model
    promotion = config.training.promotion
    use_tracking(config)
    challenger = current_alias(name, CHALLENGER)
    if challenger is None:
        raise ModelNotFoundError(f"model {name!r} has no {CHALLENGER!r} alias: train a model first")
    champion = current_alias(name, CHAMPION)
    summary = StepSummary("promote")
    with mlflow.start_run(run_name="promotion"):
        mlflow.set_tags({"model": name, "challenger": challenger, "champion_before": champion or "none"})
        if champion is None or champion == challenger:
            decision = "first model" if champion is None else "already champion"
            promoted = champion is None
        else:
            metrics = compare_on_snapshot(catalog, config, champion, challenger)
            for role, values in metrics.items():
                mlflow.log_metrics({f"{role}_{k}": float(v) for k, v in values.items() if isinstance(v, (int, float))})
            metric = metric_for(promotion.metric, config.training.model.objective)
            # In the metric's direction: a lower RMSE is a gain.
            gain = improvement(metric, metrics["challenger"][metric], metrics["champion"][metric])
            promoted = gain >= promotion.min_gain
            decision = (f"challenger {'wins' if promoted else 'loses'}: {metric} "
                        f"{metrics['challenger'][metric]:.4f} vs {metrics['champion'][metric]:.4f} "
                        f"(gain {gain:+.4f}, needed {promotion.min_gain:+.4f})")
            summary.details["comparison"] = metrics
        mlflow.set_tags({"decision": decision, "promoted": str(promoted)})
        if promoted:
            if champion is not None and champion_history(name)[-1:] != [champion]:
                _record_history(name, served_history(name, champion))  # one set by hand stays in the history
            set_alias(name, CHAMPION, challenger)
    log.info("promotion of %s v%s: %s", name, challenger, decision)
    summary.details.update({"decision": decision, "promoted": promoted, "challenger": challenger,
                            "champion": current_alias(name, CHAMPION)})
    return summary


def served_history(name: str, champion: int | None) -> list[int]:
    """The champions in order: the recorded history (the registry's `champion_history` tag), and
    `champion`, the alias's version, when it was set outside lakeboost (MlflowClient, the registry's
    UI) and so is not its last entry."""
    recorded = champion_history(name)
    if champion is None or (recorded and recorded[-1] == champion):
        return recorded
    log.warning("%s@%s is version %d, recorded as %s: moved outside lakeboost", name, CHAMPION, champion,
                recorded[-1] if recorded else "none")
    return [*recorded, champion]


def _record_history(name: str, history: list[int]) -> None:
    from mlflow.tracking import MlflowClient

    MlflowClient().set_registered_model_tag(name, HISTORY_TAG, ",".join(map(str, history)))


def rollback(config: LakeboostConfig, *, reason: str) -> StepSummary:
    """Move `champion` back to the champion before the one it points at; record who, when and why.

    The alias, not the recorded history, says which version serves: one set outside lakeboost is
    the version rolled back from (history [1, 2] with the alias moved to 3: back to 2, not to 1).

    Raises:
        ModelNotFoundError: no champion alias, or no champion before it.
    """
    name = config.training.tracking.registered_model
    use_tracking(config)
    current = current_alias(name, CHAMPION)
    if current is None:
        raise ModelNotFoundError(f"model {name!r} has no {CHAMPION!r} alias to roll back (recorded champions: "
                                 f"{champion_history(name)}); set one with the promote step")
    history = served_history(name, current)
    if len(history) < 2:
        raise ModelNotFoundError(f"model {name!r} has no previous champion to roll back to (history: {history})")
    previous = history[-2]
    from mlflow.tracking import MlflowClient

    MlflowClient().set_registered_model_alias(name, CHAMPION, str(previous))
    _record_history(name, history[:-1])
    with mlflow.start_run(run_name="rollback"):
        mlflow.set_tags({"model": name, "from_version": current, "to_version": previous, "reason": reason,
                         "user": getpass.getuser(), "at": dt.datetime.now(dt.timezone.utc).isoformat()})
    log.warning("rollback of %s champion v%d -> v%d by %s: %s", name, current, previous, getpass.getuser(), reason)
    summary = StepSummary("rollback")
    summary.details.update({"from_version": current, "to_version": previous, "reason": reason})
    return summary
