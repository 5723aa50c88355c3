"""The pipeline runner: the configured steps in order (lakeboost.steps holds the registry)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pyspark.sql import SparkSession

from lakeboost.config import LakeboostConfig
from lakeboost.cost import CostMeter
from lakeboost.errors import ConfigError
from lakeboost.logs import StepSummary, log_summary
from lakeboost.progress import Progress, duration
from lakeboost.steps import StepOptions, check_steps, configured_steps, get_step

log = logging.getLogger(__name__)


def select_steps(config: LakeboostConfig, only: Sequence[str] = (), start: str | None = None,
                 stop: str | None = None) -> list[str]:
    """Step names to run, in the configured pipeline order. Raises ConfigError for an unknown name."""
    names = configured_steps(config)
    for name in [*only, start, stop]:
        if name is not None and name not in names:
            raise ConfigError(f"unknown pipeline step {name!r}; this config's steps are {names} "
                              "(pipeline.steps)")
    if only:
        return [n for n in names if n in only]
    first = names.index(start) if start else 0
    last = names.index(stop) if stop else len(names) - 1
    return names[first:last + 1]


def run_pipeline(spark: SparkSession, config: LakeboostConfig, steps: Sequence[str],
                 options: Mapping[str, Mapping[str, Any] | StepOptions] | None = None) -> StepSummary:
    """Run steps in order; a failing step raises its own error and later steps do not run.

    `options` gives a step its options (`{"score": {"date": ["2026-01-01"]}}` or a `ScoreOptions`),
    checked with every step's required config keys before the first step runs. A step's
    `follow_up` (the monitor asking for a retrain) runs right after it, once.
    """
    parsed = {name: get_step(name).parse_options(values) for name, values in (options or {}).items()}
    check_steps(config, steps, parsed)
    overall = StepSummary("pipeline")
    started = time.monotonic()
    queue = list(steps)
    with Progress("pipeline", "step", total=len(queue)) as progress:
        while queue:
            name = queue.pop(0)
            progress.start(name)
            summary = _run_step(spark, config, name, parsed.get(name), overall,
                                position=f"{progress.count + 1}/{progress.total}")
            progress.done(name, f"{duration(summary.seconds)}")
            if summary.follow_up:
                log.warning("pipeline: %s asks for %s next", name, list(summary.follow_up))
                follow = [f for f in summary.follow_up if f not in queue]
                followed = run_pipeline(spark, config, follow)
                summary.details["follow_up"] = {f: followed.details.get(f, {}) for f in follow}
                overall.details[name] = {**overall.details[name], "follow_up": summary.details["follow_up"]}

    overall.seconds = round(time.monotonic() - started, 2)
    return overall


def run_step(spark: SparkSession, config: LakeboostConfig, name: str,
             options: StepOptions | None = None, **values: Any) -> StepSummary:
    """One step as its own job (`lakeboost run <step>`), with the steps it asks for next.

    Options come typed (`options`) or as field values (`run_step(spark, config, "score", model="3")`).
    """
    spec = get_step(name)
    parsed = spec.parse_options(options if options is not None else values)
    check_steps(config, [name], {name: parsed})
    summary = spec.execute(spark, config, parsed)
    if summary.follow_up:
        log.warning("%s asks for %s next", name, list(summary.follow_up))
        followed = run_pipeline(spark, config, list(summary.follow_up))
        summary.details["follow_up"] = {f: followed.details.get(f, {}) for f in summary.follow_up}
    return summary


def _run_step(spark: SparkSession, config: LakeboostConfig, name: str, options: StepOptions | None,
              overall: StepSummary, position: str = "") -> StepSummary:
    log.info("pipeline step %s%s: starting", name, f" ({position})" if position else "")
    step_started = time.monotonic()
    spec = get_step(name)
    with CostMeter(spark, config.cost) as meter:
        summary = spec.execute(spark, config, options)
    summary.details["cost"] = meter.report.as_dict()
    summary.step = name
    summary.seconds = round(time.monotonic() - step_started, 2)
    log_summary(summary)
    overall.versions.update(summary.versions)
    overall.details[name] = {
        **summary.details, "rows_read": summary.rows_read, "rows_written": summary.rows_written,
        "rows_quarantined": summary.rows_quarantined, "seconds": summary.seconds,
    }
    return summary


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
        shown = " ".join(f"{k}={v:.4f}" for k, v in sorted(test.items())
                         if isinstance(v, float) and not k.endswith("_binned"))[:400]
        lines.append(f"model {config.training.tracking.registered_model} v{train['model_version']}: test "
                     f"{shown} (run {train.get('run_id')})")
    if "promote" in overall.details:
        lines.append(f"promotion: {overall.details['promote'].get('decision')}")
    lines.append(f"tables: {config.storage.root} (bronze/, silver/, gold/); {len(overall.versions)} written by this "
                 "run (their versions: the JSON summary's `versions`)")
    if config.training.tracking.tracking_uri is None and "://" not in config.storage.root:
        lines.append(f"MLflow UI: .venv/bin/mlflow ui --backend-store-uri sqlite:///{config.storage.root}/mlflow.db "
                     f"--default-artifact-root {config.storage.root}/mlartifacts  (then open http://127.0.0.1:5000)")
    return lines


def closing_lines(summary: StepSummary, config: LakeboostConfig, summary_file: str | None) -> list[str]:
    """What a run prints last: for the pipeline its report (`report_lines`), for one step a line of
    counts; then the monitor's verdict (alerts, report), and where the JSON summary went."""
    if summary.step == "pipeline":
        lines = report_lines(summary, config)
    else:
        lines = [f"{summary.step}: {summary.rows_read} rows in, {summary.rows_written} written, "
                 f"{summary.rows_quarantined} quarantined, {summary.seconds:.1f}s"]
        if summary.step == "train" and summary.details.get("model_version") is not None:
            lines.append(f"model {config.training.tracking.registered_model} v{summary.details['model_version']} "
                         f"(run {summary.details.get('run_id')})")
    monitor = summary.details.get("monitor") if summary.step == "pipeline" else summary.details
    if summary.step in ("pipeline", "monitor") and isinstance(monitor, dict) and "alerts" in monitor:
        lines.append(monitor_line(monitor))
    lines.append(f"summary (JSON): {summary_file}" if summary_file else
                 "summary (JSON): not written (see the warning above); logged as a lakeboost.summary line")
    return lines


def monitor_line(monitor: dict[str, Any]) -> str:
    """The monitor's verdict in one line: windows, alerts (new, undelivered), the model judged, the report."""
    undelivered = monitor.get("undelivered_alerts") or 0
    alerts = (f"{monitor.get('alerts', 0)} alert(s), {monitor.get('new_alerts', 0)} new"
              + (f", {undelivered} undelivered" if undelivered else ""))
    retrain = " - retrain requested" if monitor.get("retrain") else ""
    return (f"monitor: model v{monitor.get('model_version')}, {monitor.get('windows', 0)} window(s), {alerts}"
            f"{retrain}; report {monitor.get('report')}")

