"""The monitor step: drift, prediction drift, delayed-label performance and data-quality trend
per scoring window, written to a Delta monitoring table; alerts, hooks, an HTML report in MLflow.

What is compared with what:
- Reference: a seeded sample of the training set (`gold.training_set`), the distribution the
  champion learnt from; its scores (the champion applied to it) are the prediction reference.
- Current: the champion's predictions in each configured predictions table with the inputs
  they were scored with (`scored_features`, kept by batch and stream scoring alike, so the live
  path's on-the-fly window features are compared too), per window. A predictions table written
  before scored features were kept is joined to the table its rows were scored from instead.
Only features present on both sides are compared; the others are listed in the report. Each
breach carries its likely cause (lakeboost.monitor.causes).
Rows are upserted on (table, window, model version, kind, subject, metric), so a re-run over
the same data changes nothing and a window's performance is updated as its labels arrive.

Alerts are delivered at least once (lakeboost.monitor.alerts has the alerts table's columns):
a run first re-sends the alerts earlier runs left undelivered, then records its new alerts
(fault point `monitor.after_alert_recorded`), sends them (`monitor.after_alert_sent`), logs the
report, and last asks for a retrain for every drift or decay alert whose retrain is still
pending, its own or one a crashed run recorded. The summary reports `new_alerts`,
`resent_alerts`, `undelivered_alerts` (still pending: tried again next run) and `hook_failures`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
import uuid
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient
from pydantic import Field
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeboost.config.metrics import metric_for, objective_kind
from lakeboost.config.model import LakeboostConfig
from lakeboost.errors import ConfigError
from lakeboost.faults import fault_point
from lakeboost.io.catalog import TableCatalog
from lakeboost.logs import StepSummary
from lakeboost.model import CHAMPION, SCORED_FEATURES, Model, load_model, model_tags, use_tracking
from lakeboost.monitor.alerts import Alert, deliver_alerts, record_alerts, request_retrains
from lakeboost.monitor.causes import History, span
from lakeboost.monitor.drift import DriftResult, Reference
from lakeboost.monitor.measure import quality_records, table_records
from lakeboost.monitor.performance import WINDOW, decay_metric, window_start
from lakeboost.monitor.records import MonitorRecord, write_records
from lakeboost.monitor.report import render_report
from lakeboost.monitor.wording import alerts_for
from lakeboost.progress import Progress
from lakeboost.spark.fs import write_text
from lakeboost.spark.rows import first_row
from lakeboost.steps import StepContext, StepOptions, step

log = logging.getLogger(__name__)
SEED = 7
RETRAIN_STEPS = ("features", "train", "promote")
RETRAIN_KINDS = ("data_drift", "prediction_drift", "performance_decay")


class MonitorOptions(StepOptions):
    as_of: dt.datetime | None = Field(None, description="judge labels as known at this UTC time (default: now), "
                                                        "e.g. 2026-03-31T00:00", json_schema_extra={"metavar": "TIME"})


@step("monitor", options=MonitorOptions,
      requires={"gold.training_set": "monitoring compares scoring data with it"})
def monitor(ctx: StepContext[MonitorOptions]) -> StepSummary:
    """Monitor the champion: feature and prediction drift, delayed-label performance and data-quality
    trend per scoring window; alerts with hooks; an HTML report logged to MLflow."""
    return monitor_step(ctx.catalog, ctx.config, as_of=ctx.options.as_of)


def monitor_step(catalog: TableCatalog, config: LakeboostConfig, *, as_of: dt.datetime | None = None) -> StepSummary:
    cfg, ts = config.monitor, config.gold.training_set
    assert ts is not None, "the monitor step requires gold.training_set (lakeboost.steps.check_steps)"
    # First the alerts earlier runs could not deliver (a crash, a failing hook), whatever this run finds.
    resent = deliver_alerts(catalog, cfg.alerts_table, cfg.hooks)
    use_tracking(config)
    champion = load_model(config.training.tracking.registered_model, CHAMPION)
    as_of = as_of or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    run_id = uuid.uuid4().hex
    metric = metric_for(cfg.metric, champion.meta.objective)
    # Decay is judged by a metric the base rate does not move (ROC AUC for binary models).
    judged_by = decay_metric(metric, objective_kind(champion.meta.objective))
    baseline = _training_metric(champion, judged_by)
    reference = _reference_sample(catalog, cfg.reference_sample_rows).persist()
    # The scores keep the slice columns as they were (before the model's encodings).
    sliced = [c for c in cfg.slices if c in reference.columns]
    reference_scores = champion.predict(reference.withColumns({f"_slice_{i}": F.col(f"`{c}`")
                                                              for i, c in enumerate(sliced)}),
                                        keep=tuple(f"_slice_{i}" for i in range(len(sliced)))) \
        .select("score", *[F.col(f"_slice_{i}").alias(c) for i, c in enumerate(sliced)]).persist()
    # Binned once for every table compared with them (edges, bin and category counts).
    binned, binned_scores = Reference(reference), Reference(reference_scores)
    history = _history(catalog, config, champion)
    training_rows = _training_rows(catalog, champion.dataset.event_time, cfg.window)
    records: list[MonitorRecord] = []
    drift: dict[tuple[str, Any], list[DriftResult]] = {}
    notes = [f"model {champion.name} v{champion.version}; labels known as of {as_of:%Y-%m-%d %H:%M} UTC",
             f"reference: {catalog.tables.training_set} sample (seed {SEED}); training examples from "
             f"{span(history.warm_up_trained)} after the first event on (warm-up)"]
    progress = Progress("monitor", "predictions table")
    try:
        for table, inputs in _monitored(catalog, config).items():
            progress.start(table)
            current = _current(catalog, table, inputs, champion, cfg.window).persist()
            try:
                records += table_records(catalog, config, table, current, binned, binned_scores, champion,
                                         as_of=as_of, baseline=baseline, metric=metric, notes=notes,
                                         history=history, drift=drift, training_rows=training_rows)
            finally:
                current.unpersist()
            progress.done(table)
    finally:
        progress.close()
        reference.unpersist()
        reference_scores.unpersist()
    records += quality_records(catalog, cfg)
    written = write_records(catalog, cfg.table, records, run_id=run_id)
    alerts = alerts_for(records, cfg, model_version=champion.version, baseline=baseline, metric=judged_by)
    new_alerts = record_alerts(catalog, alerts, cfg.alerts_table, run_id=run_id,
                               retrain_kinds=RETRAIN_KINDS if cfg.retrain_on_alert else ())
    fault_point("monitor.after_alert_recorded")
    sent = deliver_alerts(catalog, cfg.alerts_table, cfg.hooks, only={a.alert_id for a in new_alerts})
    fault_point("monitor.after_alert_sent")
    report_uri, report_page = _log_report(catalog, config, records, alerts, drift, champion, baseline, judged_by,
                                          notes, run_id, new_alerts=len(new_alerts))
    # Marked requested last, as the summary hands the request to the runner.
    retrain = _retrain_request(config, request_retrains(catalog, cfg.alerts_table) if cfg.retrain_on_alert else [])

    summary = StepSummary("monitor", rows_written=written)
    summary.details.update({
        "model_version": champion.version, "monitor_run_id": run_id,
        "windows": len({(r.table, r.window_start) for r in records}),
        "alerts": len(alerts), "new_alerts": len(new_alerts), "hook_failures": [*resent.failures, *sent.failures],
        "resent_alerts": resent.tried, "undelivered_alerts": resent.pending + sent.pending,
        "retrain": retrain, "report": report_page or report_uri, "report_artifact": report_uri,
        "breaches": sorted({f"{a.kind}:{a.table}:{a.window_start}" for a in alerts}),
    })
    if retrain is not None:  # the pipeline runner runs them next
        summary.follow_up = RETRAIN_STEPS
    return summary


def _training_metric(champion: Model, metric: str) -> float | None:
    metrics = MlflowClient().get_run(champion.run_id).data.metrics
    # The binned area when present: window metrics are binned the same way.
    return metrics.get(f"test_{metric}_binned", metrics.get(f"test_{metric}"))


def _training_rows(catalog: TableCatalog, event_time: str, window: str) -> dict[Any, int]:
    """The training set's rows per window: what a window's row count is judged against."""
    rows = catalog.read(catalog.tables.training_set).groupBy(window_start(event_time, window).alias(WINDOW)).count()
    return {r[WINDOW]: int(r["count"]) for r in rows.collect()}  # one row per window


def _reference_sample(catalog: TableCatalog, rows: int) -> DataFrame:
    training = catalog.read(catalog.tables.training_set)
    total = training.count()
    return training if total <= rows else training.sample(fraction=rows / total, seed=SEED)


def _monitored(catalog: TableCatalog, config: LakeboostConfig) -> dict[str, str]:
    """Predictions table -> the table holding the inputs its rows were scored from."""
    ts = config.gold.training_set
    assert ts is not None
    sources = {config.scoring.predictions_table: ts.features}
    if config.scoring.stream is not None:
        sources[config.scoring.stream.predictions_table] = config.scoring.stream.events_table
    chosen = {}
    for table in config.monitor.predictions or list(sources):
        if table not in sources:
            raise ConfigError(f"monitor.predictions: {table!r} is not a predictions table lakeboost writes; "
                              f"known: {sorted(sources)}")
        if catalog.exists(table) and catalog.exists(sources[table]):
            chosen[table] = sources[table]
        else:
            log.info("monitor: %s has no predictions yet; skipped", table)
    return chosen


def _current(catalog: TableCatalog, table: str, inputs: str, champion: Model, window: str) -> DataFrame:
    dataset = champion.dataset
    stored = catalog.read(table)
    scored = [c for c in ("score", "predicted_label", "probabilities") if c in stored.columns]
    mine = (F.col("model_version") == champion.version) & (F.col("model_name") == champion.name)
    if SCORED_FEATURES in stored.columns:  # the inputs as scored, kept with each prediction
        current = stored.filter(mine).select(*dataset.key, dataset.event_time, *scored, f"{SCORED_FEATURES}.*")
    else:
        predictions = stored.filter(mine).select(*dataset.key, *scored)
        current = predictions.join(catalog.read(inputs).drop("score", "model_version"), list(dataset.key), "inner")
    return current.withColumn(WINDOW, window_start(dataset.event_time, window))


def _history(catalog: TableCatalog, config: LakeboostConfig, champion: Model) -> History:
    """When the feature history starts, and how long its windows need to fill (for the causes)."""
    ts = config.gold.training_set
    assert ts is not None
    feature_set = config.gold.features.get(ts.features.removeprefix("gold."))
    delay = ts.label_maturity or dt.timedelta(0)
    needed = max(feature_set.warm_up_reasons(delay).values(), default=dt.timedelta(0)) if feature_set \
        else dt.timedelta(0)
    own = {*(feature_set.passthrough if feature_set else ()),
           *[c for join in ts.as_of for c in join.columns.values()]}
    first = first_row(catalog.read(ts.features).agg(F.min(champion.dataset.event_time)))[0]
    return History(first_event=first, warm_up_needed=needed, warm_up_trained=ts.resolved_warm_up(),
                   historical=frozenset(f for f in champion.meta.features if f not in own))


def _retrain_request(config: LakeboostConfig, alerts: list[Alert]) -> dict[str, Any] | None:
    """On drift/decay alerts whose retrain is pending (when configured), what asks the runner for
    a retrain (features -> train -> promote; the promotion gate still decides). None: no retrain."""
    triggers = [a for a in alerts if a.kind in RETRAIN_KINDS]
    if not (config.monitor.retrain_on_alert and triggers):
        return None
    log.warning("monitor: %d drift/decay alert(s); asking for a retrain (%s)", len(triggers),
                " -> ".join(RETRAIN_STEPS))
    return {"steps": list(RETRAIN_STEPS), "triggers": sorted({a.kind for a in triggers})}


def _log_report(catalog: TableCatalog, config: LakeboostConfig, records: list[MonitorRecord], alerts: list[Alert],
                drift: dict[tuple[str, Any], list[DriftResult]], champion: Model, baseline: float | None,
                metric: str, notes: list[str], run_id: str, *, new_alerts: int) -> tuple[str, str | None]:
    """The report logged to the monitor's MLflow run, and written as a page of its own beside the
    tables (`<storage.root>/_reports/monitor/<UTC time>-<run>.html`, and `latest.html`, a stable
    address to bookmark). Returns (the MLflow artifact's URI, the page's path; None if it could
    not be written, which is logged)."""
    cfg = config.monitor
    with mlflow.start_run(run_name="monitor") as run, tempfile.TemporaryDirectory() as tmp:
        links = [(f"model {champion.name} v{champion.version}", _ui_link(f"#/models/{champion.name}/versions/"
                                                                          f"{champion.version}")),
                 (f"its training run {champion.run_id}", _ui_link(f"#/experiments/{run.info.experiment_id}/runs/"
                                                                  f"{champion.run_id}")),
                 (f"this monitor run {run.info.run_id}", _ui_link(f"#/experiments/{run.info.experiment_id}/runs/"
                                                                  f"{run.info.run_id}"))]
        page = render_report(records, alerts, drift,
                             title=f"lakeboost monitoring: {champion.name} v{champion.version}", window=cfg.window,
                             thresholds={"psi": cfg.psi_threshold, "ks": cfg.ks_threshold,
                                         "prediction_psi": cfg.prediction_psi_threshold,
                                         "failure_rate": cfg.max_failure_rate},
                             baseline=baseline, metric=metric, notes=notes, new_alerts=new_alerts, links=links)
        mlflow.set_tags({"monitor_run_id": run_id, **model_tags(champion)})
        breaches = [r for r in records if r.breached]
        mlflow.log_metrics({"windows": len({(r.table, r.window_start) for r in records}),
                            "breaches": len(breaches), "alerts": len(alerts), "new_alerts": new_alerts})
        path = Path(tmp) / "monitor_report.html"
        path.write_text(page)
        rows = [r.as_dict() for r in records]
        (Path(tmp) / "monitor_records.json").write_text(json.dumps(rows, default=str, indent=1))
        mlflow.log_artifacts(tmp, "monitor")
        uri = f"{run.info.artifact_uri}/monitor/monitor_report.html"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    folder = f"{config.storage.root.rstrip('/')}/_reports/monitor"
    try:
        write_text(catalog.spark, f"{folder}/{stamp}-{run_id[:8]}.html", page)
        write_text(catalog.spark, f"{folder}/latest.html", page)
    except Exception as exc:  # noqa: BLE001 - the report is in the MLflow run either way
        log.warning("monitor: could not write the report page under %s (%s); it is in the MLflow run", folder, exc)
        return uri, None
    return uri, f"{folder}/latest.html"


def _ui_link(fragment: str) -> str | None:
    """A link into the MLflow UI when the tracking store is a server (http/https); None for a
    local store, whose UI (`mlflow ui`) has no fixed address."""
    uri = mlflow.get_tracking_uri()
    return f"{uri.rstrip('/')}/{fragment}" if uri.startswith(("http://", "https://")) else None
