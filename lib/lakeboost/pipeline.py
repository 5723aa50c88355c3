"""The pipeline: named steps in order, each also runnable alone as its own job."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from pyspark.sql import SparkSession

from lakeboost.config import LakeboostConfig
from lakeboost.cost import CostMeter
from lakeboost.errors import ConfigError
from lakeboost.logs import StepSummary, log_summary

log = logging.getLogger(__name__)
Step = Callable[[SparkSession, LakeboostConfig], StepSummary]


def _generate(spark: SparkSession, config: LakeboostConfig) -> StepSummary:
    from lakeboost.demo.job import generate_step

    return generate_step(spark, config)


def _ingest(spark: SparkSession, config: LakeboostConfig) -> StepSummary:
    from lakeboost.ingest.bronze import ingest_sources

    return ingest_sources(spark, config)


def _refine(spark: SparkSession, config: LakeboostConfig) -> StepSummary:
    from lakeboost.refine.job import refine_step

    return refine_step(spark, config)


def _features(spark: SparkSession, config: LakeboostConfig) -> StepSummary:
    from lakeboost.features.job import features_step

    return features_step(spark, config)


def _train(spark: SparkSession, config: LakeboostConfig) -> StepSummary:
    from lakeboost.train.job import train_step

    return train_step(spark, config)


def _promote(spark: SparkSession, config: LakeboostConfig) -> StepSummary:
    from lakeboost.score.promote import promote_step

    return promote_step(spark, config)


def _score(spark: SparkSession, config: LakeboostConfig) -> StepSummary:
    from lakeboost.score.batch import score_step

    return score_step(spark, config)


def _score_stream(spark: SparkSession, config: LakeboostConfig) -> StepSummary:
    from lakeboost.score.stream import stream_score

    # Catch up on the live events that have landed, then stop (a scheduled run); a long-lived
    # stream is `jobs/score_stream.py --continuous`.
    return stream_score(spark, config)


def _monitor(spark: SparkSession, config: LakeboostConfig) -> StepSummary:
    from lakeboost.monitor.job import monitor_step

    return monitor_step(spark, config)


STEPS: dict[str, Step] = {
    "generate": _generate,
    "ingest": _ingest,
    "refine": _refine,
    "features": _features,
    "train": _train,
    "promote": _promote,
    "score": _score,
    "score_stream": _score_stream,
    "monitor": _monitor,
}


def select_steps(only: Sequence[str] = (), start: str | None = None, stop: str | None = None) -> list[str]:
    """Step names to run, in pipeline order. Raises ConfigError for an unknown name."""
    names = list(STEPS)
    for name in [*only, start, stop]:
        if name is not None and name not in STEPS:
            raise ConfigError(f"unknown pipeline step {name!r}; steps are {names}")
    if only:
        return [n for n in names if n in only]
    first = names.index(start) if start else 0
    last = names.index(stop) if stop else len(names) - 1
    return names[first:last + 1]


def run_pipeline(spark: SparkSession, config: LakeboostConfig, steps: Sequence[str]) -> StepSummary:
    """Run steps in order; a failing step raises its own error and later steps do not run."""
    overall = StepSummary("pipeline")
    started = time.monotonic()
    for name in steps:
        log.info("pipeline step %s: starting", name)
        step_started = time.monotonic()
        with CostMeter(spark, config.cost) as meter:
            summary = STEPS[name](spark, config)
        summary.details["cost"] = meter.report.as_dict()
        summary.step = name
        summary.seconds = round(time.monotonic() - step_started, 2)
        log_summary(summary)
        overall.versions.update(summary.versions)
        overall.details[name] = {
            **summary.details, "rows_read": summary.rows_read, "rows_written": summary.rows_written,
            "rows_quarantined": summary.rows_quarantined, "seconds": summary.seconds,
        }

    overall.seconds = round(time.monotonic() - started, 2)
    for line in report_lines(overall, config):
        log.info("%s", line)
    return overall


def report_lines(overall: StepSummary, config: LakeboostConfig) -> list[str]:
    """A human-readable end-of-run report: steps, model, where to look."""
    lines = [f"{'step':<10} {'rows in':>10} {'written':>10} {'quarantined':>11} {'seconds':>8} "
             f"{'task core-h':>11} {'cost':>9}"]
    total = 0.0
    for name, d in overall.details.items():
        if not isinstance(d, dict) or "rows_read" not in d:
            continue
        cost = d.get("cost", {})
        total += cost.get("estimated_cost", 0.0)
        lines.append(f"{name:<10} {d['rows_read']:>10} {d['rows_written']:>10} {d['rows_quarantined']:>11} "
                     f"{d['seconds']:>8.1f} {cost.get('core_hours', 0.0):>11.4f} "
                     f"{cost.get('estimated_cost', 0.0):>9.4f}")
    lines.append(f"estimated cost of the run: {total:.4f} {config.cost.currency} "
                 f"(prices: cost.core_hour={config.cost.core_hour}, cost.gb_hour={config.cost.gb_hour})")
    train = overall.details.get("train") or {}
    if train.get("model_version") is not None:
        test = train.get("metrics", {}).get("test", {})
        lines.append(f"model {config.training.tracking.registered_model} v{train['model_version']}: test "
                     f"roc_auc={test.get('roc_auc', float('nan')):.4f} pr_auc={test.get('pr_auc', float('nan')):.4f} "
                     f"(run {train.get('run_id')})")
    if "promote" in overall.details:
        lines.append(f"promotion: {overall.details['promote'].get('decision')}")
    lines.append(f"tables: {config.storage.root} (bronze/, silver/, gold/)  versions: {overall.versions}")
    if config.training.tracking.tracking_uri is None and "://" not in config.storage.root:
        lines.append(f"MLflow UI: .venv/bin/mlflow ui --backend-store-uri sqlite:///{config.storage.root}/mlflow.db "
                     f"--default-artifact-root {config.storage.root}/mlartifacts  (then open http://127.0.0.1:5000)")
    return lines
