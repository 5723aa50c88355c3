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
from typing import Any, cast

import mlflow
from mlflow.tracking import MlflowClient
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeboost.config.features import duration_seconds
from lakeboost.config.metrics import METRICS, metric_for, objective_kind
from lakeboost.config.model import LakeboostConfig
from lakeboost.config.monitoring import MonitorConfig
from lakeboost.errors import ConfigError
from lakeboost.faults import fault_point
from lakeboost.features.training_set import TRAINING_SET, known_labels, label_table, with_labels
from lakeboost.io.catalog import TableCatalog
from lakeboost.logs import StepSummary
from lakeboost.metrics.base import LABEL
from lakeboost.model import CHAMPION, SCORED_FEATURES, Model, load_model, use_tracking
from lakeboost.monitor.alerts import Alert, deliver_alerts, record_alerts, request_retrains
from lakeboost.monitor.causes import History, likely_cause, span, value_shift
from lakeboost.monitor.drift import (
    DriftResult,
    Noise,
    Reference,
    categorical_drift_by,
    numeric_drift_by,
    reference_noise,
)
from lakeboost.monitor.performance import (
    WINDOW,
    decay_bound,
    decayed,
    multiclass_by_window,
    performance_by_window,
    regression_by_window,
    window_start,
)
from lakeboost.monitor.report import render_report
from lakeboost.refine.conform import with_content_hash
from lakeboost.spark.rows import first_row

log = logging.getLogger(__name__)
RECORD_KEYS = ("table", "window_start", "model_version", "kind", "subject", "metric")
RECORD_SCHEMA = ("table string, window_start timestamp, model_version bigint, kind string, subject string, "
                 "metric string, value double, threshold double, breached boolean, rows bigint, status string, "
                 "cause string")
QUALITY_TABLE = "silver.data_quality"
SEED = 7
RETRAIN_STEPS = ("features", "train", "promote")
RETRAIN_KINDS = ("data_drift", "prediction_drift", "performance_decay")
DECAY_CAUSE = ("the labels now known show the model doing worse than at training: the link between features "
               "and label changed (see the window's feature drift) or an upstream input degraded; retrain, or roll "
               "back to the previous champion")


def monitor_step(spark: SparkSession, config: LakeboostConfig, *, as_of: dt.datetime | None = None) -> StepSummary:
    cfg, ts = config.monitor, config.gold.training_set
    if ts is None:
        raise ConfigError("gold.training_set is not configured: monitoring compares scoring data with it")
    catalog = TableCatalog(spark, config.storage)
    # First the alerts earlier runs could not deliver (a crash, a failing hook), whatever this run finds.
    resent = deliver_alerts(catalog, cfg.alerts_table, cfg.hooks)
    use_tracking(config)
    champion = load_model(config.training.tracking.registered_model, CHAMPION)
    as_of = as_of or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    run_id = uuid.uuid4().hex
    metric = metric_for(cfg.metric, champion.meta.objective)
    baseline = _training_metric(champion, metric)
    reference = _reference_sample(catalog, cfg.reference_sample_rows).persist()
    reference_scores = champion.predict(reference, keep=()).select("score").persist()
    # Binned once for every table compared with them (edges, bin and category counts).
    binned, binned_scores = Reference(reference), Reference(reference_scores)
    history = _history(catalog, config, champion)
    records: list[dict] = []
    drift: dict[tuple[str, Any], list[DriftResult]] = {}
    notes = [f"model {champion.name} v{champion.version}; labels known as of {as_of:%Y-%m-%d %H:%M} UTC",
             f"reference: {TRAINING_SET} sample (seed {SEED}); training examples from "
             f"{span(history.warm_up_trained)} after the first event on (warm-up)"]
    try:
        for table, inputs in _monitored(catalog, config).items():
            current = _current(catalog, table, inputs, champion, cfg.window).persist()
            try:
                records += _table_records(catalog, config, table, current, binned, binned_scores, champion,
                                          as_of=as_of, baseline=baseline, metric=metric, notes=notes,
                                          history=history, drift=drift)
            finally:
                current.unpersist()
    finally:
        reference.unpersist()
        reference_scores.unpersist()
    records += _quality_records(catalog, config)
    written = _write_records(catalog, cfg.table, records, run_id=run_id)
    alerts = _alerts(config, records, champion, baseline, metric)
    new_alerts = record_alerts(catalog, alerts, cfg.alerts_table, run_id=run_id,
                               retrain_kinds=RETRAIN_KINDS if cfg.retrain_on_alert else ())
    fault_point("monitor.after_alert_recorded")
    sent = deliver_alerts(catalog, cfg.alerts_table, cfg.hooks, only={a.alert_id for a in new_alerts})
    fault_point("monitor.after_alert_sent")
    report_uri = _log_report(config, records, alerts, drift, champion, baseline, metric, notes, run_id,
                             new_alerts=len(new_alerts))
    # Marked requested last, as the summary hands the request to the runner.
    retrain = _retrain_request(config, request_retrains(catalog, cfg.alerts_table) if cfg.retrain_on_alert else [])

    summary = StepSummary("monitor", rows_written=written)
    summary.details.update({
        "model_version": champion.version, "monitor_run_id": run_id, "windows": len({(r["table"], r["window_start"])
                                                                                     for r in records}),
        "alerts": len(alerts), "new_alerts": len(new_alerts), "hook_failures": [*resent.failures, *sent.failures],
        "resent_alerts": resent.tried, "undelivered_alerts": resent.pending + sent.pending,
        "retrain": retrain, "report": report_uri,
        "breaches": sorted({f"{a.kind}:{a.table}:{a.window_start}" for a in alerts}),
    })
    if retrain is not None:  # the pipeline runner runs them next
        summary.follow_up = RETRAIN_STEPS
    return summary


def _training_metric(champion: Model, metric: str) -> float | None:
    metrics = MlflowClient().get_run(champion.run_id).data.metrics
    # The binned area when present: window metrics are binned the same way.
    return metrics.get(f"test_{metric}_binned", metrics.get(f"test_{metric}"))


def _reference_sample(catalog: TableCatalog, rows: int) -> DataFrame:
    training = catalog.read(TRAINING_SET)
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
    delay = duration_seconds(ts.label_maturity) if ts.label_maturity else 0
    needed = max(feature_set.warm_up_reasons(delay).values(), default=0) if feature_set else 0
    own = {*(feature_set.passthrough if feature_set else ()),
           *[c for join in ts.as_of for c in join.columns.values()]}
    first = first_row(catalog.read(ts.features).agg(F.min(champion.dataset.event_time)))[0]
    return History(first_event=first, warm_up_needed=dt.timedelta(seconds=needed),
                   warm_up_trained=dt.timedelta(seconds=ts.warm_up_seconds()),
                   historical=frozenset(f for f in champion.meta.features if f not in own))


def _table_records(catalog: TableCatalog, config: LakeboostConfig, table: str, current: DataFrame,
                   reference: Reference, reference_scores: Reference, champion: Model, *,
                   as_of: dt.datetime, baseline: float | None, metric: str, notes: list[str], history: History,
                   drift: dict[tuple[str, Any], list[DriftResult]]) -> list[dict]:
    """Drift (with the likely cause of each breach), prediction drift and performance per window;
    `drift` collects the drift results per (table, window) for the report."""
    cfg, ts = config.monitor, config.gold.training_set
    assert ts is not None
    rows = {r[WINDOW]: int(r["count"]) for r in current.groupBy(WINDOW).count().collect()}
    judged = current.filter(F.col(WINDOW).isin([w for w, n in rows.items() if n >= cfg.min_window_rows]))
    compared = [f for f in champion.meta.features if f in current.columns and f in reference.df.columns]
    skipped = sorted(set(champion.meta.features) - set(compared))
    if skipped:
        notes.append(f"{table}: not compared (not in its scoring inputs): {', '.join(skipped)}")
    categorical = [f for f in compared if f in ts.categorical]
    numeric = [f for f in compared if f not in ts.categorical]

    def record(window: object, kind: str, subject: str, metric: str, value: float | None,
               threshold: float | None, status: str = "ok", cause: str | None = None) -> dict:
        breached = value is not None and threshold is not None and value >= threshold
        return {"table": table, "window_start": window, "model_version": champion.version, "kind": kind,
                "subject": subject, "metric": metric, "value": value, "threshold": threshold,
                "breached": breached, "rows": rows.get(window, 0), "status": status,
                "cause": cause if breached else None}

    out = []
    noise = _noise(cfg, reference, numeric, categorical, champion.dataset.event_time, rows)
    raised = sorted((n.psi, f) for f, n in noise.items() if n.psi > cfg.psi_threshold)
    if raised:
        notes.append(f"{table}: PSI bars above {cfg.psi_threshold:g} where spans of the training data, as large as a "
                     f"window, differ that much among themselves ({cfg.noise_quantile:.0%} of spans): "
                     + ", ".join(f"{f} {p:.2f}" for p, f in list(reversed(raised))[:5])
                     + (f" and {len(raised) - 5} more (their bars are in the tables below)" if len(raised) > 5 else ""))
    results = [*numeric_drift_by(reference, judged, numeric, by=WINDOW, min_values=cfg.min_window_rows),
               *categorical_drift_by(reference, judged, categorical, by=WINDOW)]
    for window, result in results:
        drift.setdefault((table, window), []).append(result)
        cause = likely_cause(result, cast(dt.datetime, window), history)
        bar = noise.get(result.feature)
        out.append(record(window, "feature_drift", result.feature, "psi", result.psi,
                          max(cfg.psi_threshold, bar.psi if bar else 0.0), cause=cause))
        if result.kind == "numeric":
            ks_bar = max(cfg.ks_threshold, bar.ks if bar and bar.ks is not None else 0.0)
            out.append(record(window, "feature_drift", result.feature, "ks", result.ks, ks_bar,
                              status="ok" if result.ks is not None else "too_few_values", cause=cause))
        else:
            out.append(record(window, "feature_drift", result.feature, "chi2", result.chi2, None))
    for window, result in numeric_drift_by(reference_scores, judged.select(WINDOW, "score"), ["score"], by=WINDOW):
        out.append(record(window, "prediction_drift", "score", "psi", result.psi, cfg.prediction_psi_threshold,
                          cause=value_shift(result)))
    for window, n in rows.items():
        if n < cfg.min_window_rows:
            out.append(record(window, "feature_drift", "*", "rows", float(n), None, status="too_few_rows"))
    return out + _performance_records(catalog, config, current, champion, record, as_of=as_of, baseline=baseline,
                                      metric=metric)


def _noise(cfg: MonitorConfig, reference: Reference, numeric: list[str], categorical: list[str], time_column: str,
           rows: dict[Any, int]) -> dict[str, Noise]:
    """Per feature, the drift spans of the reference reach among themselves, spans sized like
    the table's smallest judged window (smaller samples differ more: the bar for every window)."""
    sizes = [n for n in rows.values() if n >= cfg.min_window_rows]
    if cfg.noise_quantile is None or not sizes:
        return {}
    return reference_noise(reference, numeric, categorical, time_column=time_column, rows=min(sizes),
                           quantile=cfg.noise_quantile, min_values=cfg.min_window_rows)


def _performance_records(catalog: TableCatalog, config: LakeboostConfig, current: DataFrame,
                         champion: Model, record, *, as_of: dt.datetime, baseline: float | None,
                         metric: str) -> list[dict]:
    """The objective's metric per window once its labels are known, against the training bound:
    a relative fall of a higher-is-better metric, a relative rise of RMSE, MAE or log loss."""
    cfg, dataset = config.monitor, champion.dataset
    kind = objective_kind(champion.meta.objective)
    scored = [c for c in ("score", "predicted_label", "probabilities") if c in current.columns]
    known = known_labels(catalog.read(label_table(dataset)), dataset, as_of=as_of)
    labelled = with_labels(current.select(*dataset.key, dataset.event_time, *scored), known, dataset) \
        .withColumnRenamed(dataset.label_column, LABEL)
    maturity = dt.timedelta(seconds=duration_seconds(cfg.label_maturity))
    bound = None if baseline is None else decay_bound(metric, baseline, cfg.max_relative_drop)
    out = []
    if kind == "binary":
        for p in performance_by_window(labelled, event_time=dataset.event_time, window=cfg.window, as_of=as_of,
                                       maturity=maturity, min_rows=cfg.min_labelled_rows,
                                       min_positives=cfg.min_positive_labels):
            value = p.pr_auc if metric == "pr_auc" else p.roc_auc
            r = record(p.window_start, "performance", "model", metric, value, bound, status=p.status)
            r["breached"], r["rows"] = decayed(metric, value, bound), p.rows
            r["cause"] = DECAY_CAUSE if r["breached"] else None
            out += [r, {**r, "metric": "positives", "value": float(p.positives), "threshold": None,
                        "breached": False}]
        return out
    by_window = regression_by_window if kind == "regression" else multiclass_by_window
    for w in by_window(labelled, event_time=dataset.event_time, window=cfg.window, as_of=as_of, maturity=maturity,
                       min_rows=cfg.min_labelled_rows):
        value = None if w.metrics is None else w.metrics[metric]
        r = record(w.window_start, "performance", "model", metric, value, bound, status=w.status)
        r["breached"], r["rows"] = decayed(metric, value, bound), w.rows
        r["cause"] = DECAY_CAUSE if r["breached"] else None
        out.append(r)
    return out


def _quality_records(catalog: TableCatalog, config: LakeboostConfig) -> list[dict]:
    """Failure rate of every silver contract rule per window of its refine runs."""
    if not catalog.exists(QUALITY_TABLE):
        return []
    cfg = config.monitor
    rows = (
        catalog.read(QUALITY_TABLE)
        .groupBy(window_start("recorded_at", cfg.window).alias(WINDOW), "table", "rule")
        .agg(F.sum("passed").alias("passed"), F.sum("failed").alias("failed"))
        .collect()  # windows x rules: small
    )
    out = []
    for r in rows:
        total = int(r["passed"] or 0) + int(r["failed"] or 0)
        rate = int(r["failed"] or 0) / total if total else 0.0
        out.append({"table": "silver", "window_start": r[WINDOW], "model_version": None, "kind": "data_quality",
                    "subject": f"{r['table']}:{r['rule']}", "metric": "failure_rate", "value": rate,
                    "threshold": cfg.max_failure_rate, "breached": rate > cfg.max_failure_rate, "rows": total,
                    "status": "ok", "cause": f"{int(r['failed'] or 0)} of {total} rows failed the rule"
                    if rate > cfg.max_failure_rate else None})
    return out


def _write_records(catalog: TableCatalog, table: str, records: list[dict], *, run_id: str) -> int:
    if not records:
        return 0
    rows = catalog.spark.createDataFrame([tuple(r[k] for k in _columns()) for r in records], RECORD_SCHEMA)
    rows = (rows.transform(with_content_hash, columns=list(_columns()))
            .withColumn("monitor_run_id", F.lit(run_id)).withColumn("computed_at", F.current_timestamp()))
    return catalog.upsert(rows, table, keys=RECORD_KEYS, order_by=()).rows_written


def _columns() -> tuple[str, ...]:
    return tuple(part.split()[0] for part in RECORD_SCHEMA.split(", "))


def _alerts(config: LakeboostConfig, records: list[dict], champion: Model, baseline: float | None,
            metric: str) -> list[Alert]:
    """One alert per (table, window, kind), naming the window, each breached subject with its
    metrics against their thresholds, and the likely cause."""
    grouped: dict[tuple, list[dict]] = {}
    for r in records:
        if r["breached"]:
            subject = r["subject"] if r["kind"] == "data_quality" else "*"
            grouped.setdefault((r["kind"], r["table"], r["window_start"], subject), []).append(r)
    alerts = []
    for (kind, table, window, subject), hits in sorted(grouped.items(), key=lambda kv: str(kv[0])):
        lower_is_worse = kind == "performance" and METRICS[metric].higher_is_better
        worst = max(hits, key=lambda h: -h["value"] if lower_is_worse else h["value"])
        kind_name = {"feature_drift": "data_drift", "performance": "performance_decay"}.get(kind, kind)
        where = f"{table}, {config.monitor.window} of {window:%Y-%m-%d}" if window is not None else table
        if kind == "performance":
            moved, sign = ("fell below", "-") if METRICS[metric].higher_is_better else ("rose above", "+")
            message = (f"{where}: {metric} {worst['value']:.3f} {moved} {worst['threshold']:.3f} "
                       f"(training {baseline:.3f} {sign} {config.monitor.max_relative_drop:.0%}); likely cause: "
                       f"{worst['cause']}")
        else:
            message = f"{where}: " + _breaches_in_words(hits)
        alerts.append(Alert(kind_name, table, window, subject, float(worst["value"]), float(worst["threshold"]),
                            message, champion.version if kind != "data_quality" else None))
    return alerts


def _breaches_in_words(hits: list[dict], most: int = 5) -> str:
    """`n breached: <subject>: PSI 6.15 >= 0.2, KS 0.75 >= 0.2; likely cause: ... | ...`, worst first."""
    by_subject: dict[str, list[dict]] = {}
    for h in hits:
        by_subject.setdefault(h["subject"], []).append(h)
    ranked = sorted(by_subject.items(), key=lambda kv: -max(h["value"] for h in kv[1]))
    parts = []
    for subject, mine in ranked[:most]:
        metrics = ", ".join(f"{h['metric'].upper() if h['metric'] in ('psi', 'ks') else h['metric']} "
                            f"{h['value']:.3f} >= {h['threshold']:.3g}" for h in mine)
        cause = next((h["cause"] for h in mine if h["cause"]), None)
        parts.append(f"{subject}: {metrics}" + (f"; likely cause: {cause}" if cause else ""))
    shown = f"; the worst {most}" if len(ranked) > most else ""
    return f"{len(ranked)} breached{shown}: " + " | ".join(parts)


def _retrain_request(config: LakeboostConfig, alerts: list[Alert]) -> dict[str, Any] | None:
    """On drift/decay alerts whose retrain is pending (when configured), what asks the runner for
    a retrain (features -> train -> promote; the promotion gate still decides). None: no retrain."""
    triggers = [a for a in alerts if a.kind in RETRAIN_KINDS]
    if not (config.monitor.retrain_on_alert and triggers):
        return None
    log.warning("monitor: %d drift/decay alert(s); asking for a retrain (%s)", len(triggers),
                " -> ".join(RETRAIN_STEPS))
    return {"steps": list(RETRAIN_STEPS), "triggers": sorted({a.kind for a in triggers})}


def _log_report(config: LakeboostConfig, records: list[dict], alerts: list[Alert],
                drift: dict[tuple[str, Any], list[DriftResult]], champion: Model, baseline: float | None,
                metric: str, notes: list[str], run_id: str, *, new_alerts: int) -> str:
    cfg = config.monitor
    page = render_report(records, alerts, drift, title=f"lakeboost monitoring: {champion.name} v{champion.version}",
                         window=cfg.window,
                         thresholds={"psi": cfg.psi_threshold, "ks": cfg.ks_threshold,
                                     "prediction_psi": cfg.prediction_psi_threshold,
                                     "failure_rate": cfg.max_failure_rate},
                         baseline=baseline, metric=metric, notes=notes, new_alerts=new_alerts)
    with mlflow.start_run(run_name="monitor") as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tags({"monitor_run_id": run_id, "model_version": str(champion.version)})
        breaches = [r for r in records if r["breached"]]
        mlflow.log_metrics({"windows": len({(r["table"], r["window_start"]) for r in records}),
                            "breaches": len(breaches), "alerts": len(alerts), "new_alerts": new_alerts})
        path = Path(tmp) / "monitor_report.html"
        path.write_text(page)
        (Path(tmp) / "monitor_records.json").write_text(json.dumps(records, default=str, indent=1))
        mlflow.log_artifacts(tmp, "monitor")
        return f"{run.info.artifact_uri}/monitor/monitor_report.html"
