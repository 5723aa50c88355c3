"""Each monitored window measured into records: feature drift (with the likely cause of each
breach) against a bar that absorbs the reference's own noise, prediction drift, the model's
metric once the window's labels are known, and the failure rate of every silver contract rule."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import logging
from collections.abc import Sequence
from typing import Any, Protocol, cast

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeboost.config.metrics import METRICS, objective_kind
from lakeboost.config.model import LakeboostConfig
from lakeboost.config.monitoring import MonitorConfig
from lakeboost.features.training_set import known_labels, label_table, with_labels
from lakeboost.io.catalog import TableCatalog
from lakeboost.metrics.base import LABEL
from lakeboost.model import Model
from lakeboost.model.encodings import apply_encodings
from lakeboost.model.loss import LossModel
from lakeboost.monitor.causes import NULL_SHIFT, ROWS_MISSING, History, likely_cause, missing_upstream, value_shift
from lakeboost.monitor.drift import Comparison, DriftResult, Reference, drift_by, numeric_drift_by_slices, psi
from lakeboost.monitor.estimate import Estimate, cbpe_by_windows, dle_by_window, estimate_breached
from lakeboost.monitor.noise import Noise, reference_noises
from lakeboost.monitor.performance import (
    SPANS,
    WINDOW,
    WindowPerformance,
    decay_bound,
    decay_metric,
    decayed,
    multiclass_by_window,
    performance_by_window,
    regression_by_window,
    window_start,
)
from lakeboost.monitor.profile import (
    Profile,
    Slicer,
    check_slice_columns,
    profile_and_span_by,
    profile_by,
    slice_values,
)
from lakeboost.monitor.records import ALL, LABEL_SUBJECT, MonitorRecord
from lakeboost.monitor.wording import DECAY_CAUSE, ESTIMATED_DECAY_CAUSE, ESTIMATED_LOSS_CAUSE, quality_cause

log = logging.getLogger(__name__)
ESTIMATE_SLICE = "__estimate_slice"


class RecordOf(Protocol):
    """Makes one table's record of a window; breached when the value reaches the threshold."""

    def __call__(self, window: Any, kind: str, subject: str, metric: str, value: float | None,
                 threshold: float | None, status: str = "ok", cause: str | None = None) -> MonitorRecord: ...


def table_records(catalog: TableCatalog, config: LakeboostConfig, table: str, current: DataFrame,
                  reference: Reference, reference_scores: Reference, champion: Model, *,
                  as_of: dt.datetime, baseline: float | None, metric: str, notes: list[str], history: History,
                  drift: dict[tuple[str, Any], list[DriftResult]],
                  training_rows: dict[Any, int]) -> list[MonitorRecord]:
    """Drift (with the likely cause of each breach), prediction drift, profiles, row counts, slices
    and performance per window; `drift` collects the drift results per (table, window) for the
    report; `training_rows` is the training set's rows per window (the row-count bar)."""
    cfg, ts = config.monitor, config.gold.training_set
    assert ts is not None
    event_time = champion.dataset.event_time
    compared = [f for f in champion.meta.features if f in current.columns and f in reference.df.columns]
    skipped = sorted(set(champion.meta.features) - set(compared))
    if skipped:
        notes.append(f"{table}: not compared (not in its scoring inputs): {', '.join(skipped)}")
    categorical = [f for f in compared if f in ts.categorical]
    numeric = [f for f in compared if f not in ts.categorical]
    # The profiles give the rows per window and the span the table covers in the same aggregation.
    profiles, spans = profile_and_span_by(current, [*numeric, "score"], categorical, by=WINDOW,
                                          time_column=event_time)
    rows = {w: int(cast(float, columns["*"]["rows"])) for w, columns in profiles.items()}
    covered = (min(first for first, _ in spans.values()), max(last for _, last in spans.values())) if spans else None
    judged = current.filter(F.col(WINDOW).isin([w for w, n in rows.items() if n >= cfg.min_window_rows]))

    def record(window: Any, kind: str, subject: str, metric: str, value: float | None,
               threshold: float | None, status: str = "ok", cause: str | None = None) -> MonitorRecord:
        breached = value is not None and threshold is not None and value >= threshold
        return MonitorRecord(table, window, champion.version, kind, subject, metric, value, threshold, breached,
                             rows.get(window, 0), status, cause if breached else None)

    out = []
    bars = _noise(cfg, reference, numeric, categorical, champion.dataset.event_time, rows)
    noise = bars.get(_size_class(max(rows.values(), default=0)), {})  # full windows' bars, for the note
    raised = sorted((n.psi, f) for f, n in noise.items() if n.psi > cfg.psi_threshold)
    if raised:
        notes.append(f"{table}: PSI bars above {cfg.psi_threshold:g} where spans of the training data, as large as a "
                     f"window, differ that much among themselves ({cfg.noise_quantile:.0%} of spans): "
                     + ", ".join(f"{f} {p:.2f}" for p, f in list(reversed(raised))[:5])
                     + (f" and {len(raised) - 5} more (their bars are in the tables below)" if len(raised) > 5 else ""))
    # The features against the training sample and the score against its scores: one aggregation.
    results, scores = drift_by(judged, [Comparison(reference, numeric, categorical, cfg.min_window_rows),
                                        Comparison(reference_scores, ["score"])], by=WINDOW)
    for window, result in results:
        drift.setdefault((table, window), []).append(result)
        cause = likely_cause(result, cast(dt.datetime, window), history)
        bar = bars.get(_size_class(rows[window]), {}).get(result.feature)
        out.append(missing_data_record(result, window, bar, record))
        out.append(record(window, "feature_drift", result.feature, "psi", result.psi,
                          max(cfg.psi_threshold, bar.psi if bar else 0.0), cause=cause))
        if result.kind == "numeric":
            ks_bar = max(cfg.ks_threshold, bar.ks if bar and bar.ks is not None else 0.0)
            out.append(record(window, "feature_drift", result.feature, "ks", result.ks, ks_bar,
                              status="ok" if result.ks is not None else "too_few_values", cause=cause))
        else:
            out.append(record(window, "feature_drift", result.feature, "chi2", result.chi2, None))
    out += consecutive_drift(results, record)
    for window, result in scores:
        out.append(record(window, "prediction_drift", "score", "psi", result.psi, cfg.prediction_psi_threshold,
                          cause=value_shift(result)))
    for window, n in rows.items():
        if n < cfg.min_window_rows:
            out.append(record(window, "feature_drift", "*", "rows", float(n), None, status="too_few_rows"))
    out += profile_records(profiles, record)
    if covered is not None:
        out += row_drop_records(rows, training_rows, covered, cfg, record)
    check_slice_columns(reference.df, current, cfg.slices, table=table)
    # The slices' values are the training sample's: the same for every table of the run.
    values = reference.memo(("slice_values", tuple(cfg.slices), cfg.max_slice_values),
                            lambda: slice_values(reference.df, cfg.slices, most=cfg.max_slice_values))
    parts = [Slicer(column, values[column]) for column in cfg.slices]
    out += sliced_drift_records(reference_scores, current, parts, cfg, record)
    return out + _performance_records(catalog, config, current, champion, record, as_of=as_of, baseline=baseline,
                                      metric=metric, slices=parts)


def profile_records(profiles: Profile, record: RecordOf) -> list[MonitorRecord]:
    """Each column's profile per window (`lakeboost.monitor.profile.profile_by`), shown, not judged;
    the score's is the prediction distribution over time, `*`'s the rows."""
    out = []
    for window, columns in profiles.items():
        for column, metrics in columns.items():
            out += [record(window, "profile", column, name, value, None) for name, value in metrics.items()]
    return out


def row_drop_records(rows: dict[Any, int], training_rows: dict[Any, int], covered: tuple[dt.datetime, dt.datetime],
                     cfg: MonitorConfig, record: RecordOf) -> list[MonitorRecord]:
    """Per window, how far its rows fall short of a training window of the same span (the median
    of training's whole windows, pro rata for the part of the window the table covers: its first
    and last windows are partial), `1 - rows / expected`. Judged at `max_row_drop`, or lower still
    where training's own whole windows fell further below their median: a feed that stopped or
    was cut leaves fewer rows, with nothing NULL to show for it."""
    whole = sorted(n for w, n in sorted(training_rows.items(), key=lambda kv: str(kv[0]))[1:-1])
    if not whole or cfg.max_row_drop is None:
        return []
    median = whole[len(whole) // 2]
    bar = max(cfg.max_row_drop, 1 - whole[0] / median)
    span = SPANS[cfg.window]
    out = []
    for window, n in rows.items():
        start = cast(dt.datetime, window)
        seen = min(start + span, covered[1]) - max(start, covered[0])
        share = min(1.0, max(seen / span, 0.0))
        if share < 0.25:  # a sliver of a window at the table's edge: too little span to judge
            out.append(record(window, "missing_data", "rows", "row_drop", None, None, status="partial_window"))
            continue
        out.append(record(window, "missing_data", "rows", "row_drop", 1 - n / (median * share), bar,
                          cause=ROWS_MISSING))
    return out


def sliced_drift_records(reference_scores: Reference, current: DataFrame, parts: Slicer | Sequence[Slicer],
                         cfg: MonitorConfig, record: RecordOf) -> list[MonitorRecord]:
    """Per window and value of each slice column: its rows and its score's PSI against the training
    rows of the same value (shown, not judged). One aggregation of `current` for all slice
    columns (the rows per slice are its counts), one of the reference, kept for the next table."""
    parts = [parts] if isinstance(parts, Slicer) else list(parts)
    if not parts:
        return []
    columns = list(dict.fromkeys(p.column for p in parts))
    results, sized = numeric_drift_by_slices(reference_scores, current.select(WINDOW, "score", *columns), "score",
                                             slices=[p.expr() for p in parts], by=WINDOW)
    out = [dataclasses.replace(record(window, "profile", "*", "rows", float(n), None), slice=value, rows=n)
           for (window, value), n in sized.items()]
    for (window, value), result in results:
        n = sized.get((window, value), 0)
        judged = n >= cfg.min_window_rows
        out.append(dataclasses.replace(record(window, "prediction_drift", "score", "psi",
                                              result.psi if judged else None, None,
                                              status="ok" if judged else "too_few_rows"), slice=value, rows=n))
    return out


def consecutive_drift(results: list[tuple[Any, DriftResult]], record: RecordOf) -> list[MonitorRecord]:
    """Each feature's PSI between a window and the one before it (`window_drift`, shown, not
    judged): a change from one week to the next, which drift against training alone cannot tell
    from a slow wander. Both windows are binned on the reference's bins, so the shares compare
    as they are: no Spark job."""
    by_feature: dict[str, list[tuple[Any, DriftResult]]] = {}
    for window, result in results:
        by_feature.setdefault(result.feature, []).append((window, result))
    out = []
    for feature, windows in by_feature.items():
        ordered = sorted(windows, key=lambda w: str(w[0]))
        for (_, before), (window, now) in itertools.pairwise(ordered):
            if len(before.current_shares) == len(now.current_shares) and before.bins == now.bins:
                out.append(record(window, "window_drift", feature, "psi", psi(before.current_shares,
                                                                              now.current_shares), None))
    return out


def missing_data_record(result: DriftResult, window: Any, bar: Noise | None, record: RecordOf) -> MonitorRecord:
    """The rise of the feature's NULL share in the window over training's, judged on its own:
    a feed that stopped leaves NULLs, which the PSI of a feature with a high noise bar (a seasonal
    one) can absorb. Breached at `NULL_SHIFT`, or higher where the reference's own spans (sized
    like the window) differ more in NULL share; named missing upstream data."""
    reference_null, current_null = result.null_shares
    threshold = max(NULL_SHIFT, bar.null_share if bar else 0.0)
    return record(window, "missing_data", result.feature, "null_share_rise", current_null - reference_null,
                  threshold, cause=missing_upstream(result))


def _size_class(rows: int) -> int:
    """Windows of one power-of-two size class ([2^k, 2^(k+1)) rows) share a noise bar, computed at
    the smallest of them: within a factor of two of each other."""
    return max(rows, 1).bit_length()


def _noise(cfg: MonitorConfig, reference: Reference, numeric: list[str], categorical: list[str], time_column: str,
           rows: dict[Any, int]) -> dict[int, dict[str, Noise]]:
    """Size class -> feature -> how far spans of the reference drift among themselves, spans
    sized like the class's smallest judged window. Smaller samples differ more, so a window is
    held to the bar of windows its own size: a partial week to a partial week's bar, full weeks
    to a full week's (a bar sized for the smallest window would let full weeks drift unseen)."""
    sizes = sorted(n for n in rows.values() if n >= cfg.min_window_rows)
    if cfg.noise_quantile is None or not sizes:
        return {}
    smallest: dict[int, int] = {}
    for n in sizes:
        smallest.setdefault(_size_class(n), n)
    # Every size class's spans in one aggregation (and a size an earlier table had: none).
    bars = reference_noises(reference, numeric, categorical, time_column=time_column, sizes=list(smallest.values()),
                            quantile=cfg.noise_quantile, min_values=cfg.min_window_rows)
    return {size_class: bars[n] for size_class, n in smallest.items()}


def _performance_records(catalog: TableCatalog, config: LakeboostConfig, current: DataFrame,
                         champion: Model, record: RecordOf, *, as_of: dt.datetime, baseline: float | None,
                         metric: str, slices: Sequence[Slicer] = ()) -> list[MonitorRecord]:
    """The objective's metric per window once its labels are known, against the training bound:
    a relative fall of a higher-is-better metric, a relative rise of RMSE, MAE or log loss.
    `baseline` is the training value of the metric decay is judged by (`decay_metric`: ROC AUC
    for binary models, whose windows also record PR AUC and their base rate)."""
    cfg, dataset = config.monitor, champion.dataset
    scored = [c for c in ("score", "predicted_label", "probabilities") if c in current.columns]
    known = known_labels(catalog.read(label_table(dataset)), dataset, as_of=as_of)
    kept = [p.column for p in slices if p.column not in (*dataset.key, dataset.event_time)]
    # Read by the label's profile and the metrics' aggregation: joined with the labels once.
    labelled = with_labels(current.select(*dataset.key, dataset.event_time, *scored, *kept), known, dataset) \
        .withColumnRenamed(dataset.label_column, LABEL).persist()
    try:
        return _labelled_records(labelled, current, champion, cfg, record, as_of=as_of, baseline=baseline,
                                 metric=metric, slices=slices)
    finally:
        labelled.unpersist()


def _labelled_records(labelled: DataFrame, current: DataFrame, champion: Model, cfg: MonitorConfig,
                      record: RecordOf, *, as_of: dt.datetime, baseline: float | None, metric: str,
                      slices: Sequence[Slicer]) -> list[MonitorRecord]:
    dataset, kind = champion.dataset, objective_kind(champion.meta.objective)
    maturity = cfg.label_maturity
    assert maturity is not None, "monitor.label_maturity is resolved when LakeboostConfig loads"
    bound = None if baseline is None else decay_bound(metric, baseline, cfg.max_relative_drop)

    judged_by = decay_metric(metric, kind)

    def judged(window: Any, value: float | None, status: str, rows: int) -> MonitorRecord:
        breached = decayed(judged_by, value, bound)
        return dataclasses.replace(record(window, "performance", "model", judged_by, value, bound, status=status),
                                   breached=breached, rows=rows, cause=DECAY_CAUSE if breached else None)

    out = _label_profile(labelled, cfg, record, event_time=dataset.event_time, as_of=as_of, maturity=maturity)
    if kind == "binary":
        # Every row's windows and each slice's (shown, not judged) in one aggregation; listed all
        # first, then slice column by slice column.
        windows = performance_by_window(labelled, event_time=dataset.event_time, window=cfg.window, as_of=as_of,
                                        maturity=maturity, min_rows=cfg.min_labelled_rows,
                                        min_positives=cfg.min_positive_labels, slices=[p.expr() for p in slices])

        def listed(p: WindowPerformance) -> tuple[int, str, str]:
            column = 0 if p.slice == ALL else next(i for i, part in enumerate(slices, start=1)
                                                   if p.slice.startswith(f"{part.column}="))
            return column, str(p.window_start), p.slice

        windows.sort(key=listed)
        for p in windows:
            r = judged(p.window_start, p.roc_auc, p.status, p.rows)
            if p.slice != ALL:
                r = dataclasses.replace(r, slice=p.slice, threshold=None, breached=False, cause=None)

            def shown(name: str, value: float | None, judged: MonitorRecord = r) -> MonitorRecord:
                return dataclasses.replace(judged, metric=name, value=value, threshold=None, breached=False,
                                           cause=None)

            low, high = p.roc_auc_interval or (None, None)
            # Beside the judged ROC AUC: its 95% interval, PR AUC (shown, not judged: it moves with
            # the base rate) and the base rate that explains it.
            out += [r, shown("roc_auc_low", low), shown("roc_auc_high", high), shown("pr_auc", p.pr_auc),
                    shown("positives", float(p.positives)), shown("base_rate", p.base_rate)]
        matured = {p.window_start for p in windows if p.slice == ALL and p.status != "pending_labels"}
        return out + _estimated_records(current, champion, cfg, record, bound=bound, matured=matured, slices=slices)
    by_window = regression_by_window if kind == "regression" else multiclass_by_window
    measured = by_window(labelled, event_time=dataset.event_time, window=cfg.window, as_of=as_of, maturity=maturity,
                         min_rows=cfg.min_labelled_rows)
    for w in measured:
        out.append(judged(w.window_start, None if w.metrics is None else w.metrics[metric], w.status, w.rows))
    if kind == "regression":  # the loss model's estimate (DLE), where the model carries one
        matured = {w.window_start for w in measured if w.status != "pending_labels"}
        out += _estimated_records(current, champion, cfg, record, bound=bound, matured=matured, slices=slices,
                                  judged_by=judged_by, kind=kind)
    return out


def _estimated_records(current: DataFrame, champion: Model, cfg: MonitorConfig, record: RecordOf, *,
                       bound: float | None, matured: set[Any], slices: Sequence[Slicer],
                       judged_by: str = "roc_auc", kind: str = "binary") -> list[MonitorRecord]:
    """Performance estimated before the labels (`monitor.estimate`) for every window and slice,
    each metric with its interval (`<metric>_low`/`_high`): from the calibrated scores alone for
    binary models (CBPE), from the loss model stored with a regression model (DLE: MAE and
    RMSE; none where the model has no loss model). While a window's labels are still arriving,
    its estimate of `judged_by` is judged against the decay bound: breached when even the
    interval's far end is past it (the top below a higher-is-better bound, the bottom above an
    RMSE or MAE bound), so a window whose realized value could still pass is not called
    decayed. Once labels mature the realized `performance` record is the verdict; the estimate
    stays, shown beside it."""
    estimates = _estimates(current, champion, cfg, slices, kind=kind)
    higher_is_better = METRICS[judged_by].higher_is_better
    cause = ESTIMATED_DECAY_CAUSE if kind == "binary" else ESTIMATED_LOSS_CAUSE
    out = []
    for e in estimates:
        part = e.slice or ALL

        def shown(metric: str, value: float | None, e: Estimate = e, part: str = part) -> MonitorRecord:
            return dataclasses.replace(record(e.window_start, "estimated_performance", "model", metric, value, None),
                                       slice=part, rows=e.rows)

        judged = e.metric == judged_by and part == ALL and e.window_start not in matured and bound is not None
        main = shown(e.metric, e.estimate)
        if judged:
            breached = estimate_breached(e, bound, higher_is_better=higher_is_better, confident=True)
            main = dataclasses.replace(main, threshold=bound, breached=breached,
                                       cause=cause if breached else None, status="pending_labels")
        out += [main, shown(f"{e.metric}_low", e.low), shown(f"{e.metric}_high", e.high)]
    return out


def _estimates(current: DataFrame, champion: Model, cfg: MonitorConfig, slices: Sequence[Slicer], *,
               kind: str) -> list[Estimate]:
    """CBPE's estimates of a binary model, DLE's of a regression model with a loss model (its
    inputs encoded as scoring encodes them), per window and per value of each slice column."""
    event_time, meta = champion.dataset.event_time, champion.meta
    if kind == "binary":
        threshold = meta.threshold if meta.threshold is not None else 0.5
        # Every slice column in one aggregation (each part seeded as its own call would be).
        named = {f"{ESTIMATE_SLICE}{i}": s.expr() for i, s in enumerate(slices)}
        return [e for part in cbpe_by_windows(current.withColumns(named), event_time=event_time, window=cfg.window,
                                              threshold=threshold, slices=[None, *named])
                for e in part]
    framed = [(current, None), *((current.withColumn(ESTIMATE_SLICE, s.expr()), ESTIMATE_SLICE) for s in slices)]
    loss = LossModel.from_dict(meta.loss_model)
    if loss is None:
        return []
    missing = [f for f in loss.inputs if f not in current.columns]
    if missing:  # said, not skipped in silence: the page would otherwise look as if DLE had run
        log.warning("no loss estimate (DLE): the loss model's inputs %s are not in the scored inputs", missing)
        return []
    encodings = {c: table for c, table in meta.encodings.items() if c in loss.inputs}
    return [e for frame, by in framed
            for e in dle_by_window(apply_encodings(frame, encodings, meta.categorical_encoding), loss,
                                   event_time=event_time, window=cfg.window, slice_by=by)]


def _label_profile(labelled: DataFrame, cfg: MonitorConfig, record: RecordOf, *, event_time: str,
                   as_of: dt.datetime, maturity: dt.timedelta) -> list[MonitorRecord]:
    """The label's distribution per window as known at `as_of` (a presence label's mean is the
    share of positives reported so far), each record marked `pending_labels` until the window's
    labels have matured: the label trend beside the score's."""
    out = []
    windowed = labelled.withColumn(WINDOW, window_start(event_time, cfg.window))
    for window, columns in profile_by(windowed, [LABEL], [], by=WINDOW).items():
        mature = cast(dt.datetime, window) + SPANS[cfg.window] + maturity <= as_of
        for name, value in columns[LABEL].items():
            out.append(record(window, "profile", LABEL_SUBJECT, name, value, None,
                              status="ok" if mature else "pending_labels"))
    return out


def quality_records(catalog: TableCatalog, monitor: MonitorConfig) -> list[MonitorRecord]:
    """Failure rate of every silver contract rule per window of its refine runs."""
    if not catalog.exists(catalog.tables.data_quality):
        return []
    rows = (
        catalog.read(catalog.tables.data_quality)
        .groupBy(window_start("recorded_at", monitor.window).alias(WINDOW), "table", "rule")
        .agg(F.sum("passed").alias("passed"), F.sum("failed").alias("failed"))
        .collect()  # windows x rules: small
    )
    out = []
    for r in rows:
        failed = int(r["failed"] or 0)
        total = int(r["passed"] or 0) + failed
        rate = failed / total if total else 0.0
        breached = rate > monitor.max_failure_rate
        out.append(MonitorRecord("silver", r[WINDOW], None, "data_quality", f"{r['table']}:{r['rule']}",
                                 "failure_rate", rate, monitor.max_failure_rate, breached, total,
                                 cause=quality_cause(failed, total) if breached else None))
    return out
