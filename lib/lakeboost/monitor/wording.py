"""What a monitor alert says: one alert per (table, window, kind), naming the window, each
breached subject with its metrics against their thresholds, and the likely cause."""

from __future__ import annotations

from collections.abc import Sequence

from lakeboost.config.metrics import METRICS
from lakeboost.config.monitoring import MonitorConfig
from lakeboost.monitor.alerts import Alert
from lakeboost.monitor.records import ALL, MonitorRecord

DECAY_CAUSE = ("the labels now known show the model doing worse than at training: the link between features "
               "and label changed (see the window's feature drift) or an upstream input degraded; retrain, or roll "
               "back to the previous champion")


ESTIMATED_DECAY_CAUSE = ("the calibrated scores alone (CBPE, labels still arriving) put even the interval's top below "
                         "the bound: the model's inputs moved where it ranks worse; see the window's feature drift, "
                         "and expect the realized value once labels mature")
ESTIMATED_LOSS_CAUSE = ("the loss model fitted on validation (DLE, labels still arriving) puts even the interval's "
                        "bottom above the bound: the model's inputs moved where its errors are larger; see the "
                        "window's feature drift, and expect the realized value once labels mature")


def quality_cause(failed: int, total: int) -> str:
    return f"{failed} of {total} rows failed the rule"


def alerts_for(records: Sequence[MonitorRecord], monitor: MonitorConfig, *, model_version: int,
               baseline: float | None, metric: str) -> list[Alert]:
    """One alert per (table, window, kind) of the breached records; data-quality alerts per rule.
    A binary window's decay alert also gives its base rate and PR AUC (`metric` is ROC AUC there)."""
    shown = {(r.table, r.window_start, r.metric): r.value for r in records
             if r.kind == "performance" and r.metric in ("base_rate", "pr_auc") and r.value is not None
             and r.slice == ALL}
    estimated = {(r.table, r.window_start, r.metric): r.value for r in records
                 if r.kind == "estimated_performance" and r.slice == ALL and r.value is not None}
    grouped: dict[tuple, list[MonitorRecord]] = {}
    for r in records:
        if r.breached:
            subject = r.subject if r.kind == "data_quality" else "*"
            grouped.setdefault((r.kind, r.table, r.window_start, subject), []).append(r)
    alerts = []
    for (kind, table, window, subject), hits in sorted(grouped.items(), key=lambda kv: str(kv[0])):
        lower_is_worse = kind in ("performance", "estimated_performance") and METRICS[metric].higher_is_better
        worst = max(hits, key=lambda h: -_value(h) if lower_is_worse else _value(h))
        kind_name = {"feature_drift": "data_drift", "performance": "performance_decay",
                     "estimated_performance": "estimated_decay"}.get(kind, kind)
        where = f"{table}, {monitor.window} of {window:%Y-%m-%d}" if window is not None else table
        if kind == "estimated_performance":
            low, high = (estimated.get((table, window, f"{worst.metric}_{end}")) for end in ("low", "high"))
            interval = f" [{low:.3f}-{high:.3f}]" if low is not None and high is not None else ""
            message = (f"{where}: {worst.metric} estimated {_value(worst):.3f}{interval} before labels, below "
                       f"{_threshold(worst):.3f} (training {baseline:.3f} - {monitor.max_relative_drop:.0%}); "
                       f"likely cause: {worst.cause}")
        elif kind == "performance":
            moved, sign = ("fell below", "-") if METRICS[metric].higher_is_better else ("rose above", "+")
            message = (f"{where}: {metric} {_value(worst):.3f} {moved} {_threshold(worst):.3f} "
                       f"(training {baseline:.3f} {sign} {monitor.max_relative_drop:.0%})"
                       + _base_rate(shown, table, window) + f"; likely cause: {worst.cause}")
        else:
            message = f"{where}: " + breaches_in_words(hits)
        alerts.append(Alert(kind_name, table, window, subject, _value(worst), _threshold(worst),
                            message, model_version if kind != "data_quality" else None))
    return alerts


def _base_rate(shown: dict[tuple, float], table: str, window: object) -> str:
    rate, pr_auc = shown.get((table, window, "base_rate")), shown.get((table, window, "pr_auc"))
    if rate is None:
        return ""
    return f"; base rate {rate:.2%}" + (f", PR AUC {pr_auc:.3f} (not judged: it moves with the base rate)"
                                          if pr_auc is not None else "")


def breaches_in_words(hits: Sequence[MonitorRecord], most: int = 5) -> str:
    """`n breached: <subject>: PSI 6.15 >= 0.2, KS 0.75 >= 0.2; likely cause: ... | ...`, worst first."""
    by_subject: dict[str, list[MonitorRecord]] = {}
    for h in hits:
        by_subject.setdefault(h.subject, []).append(h)
    ranked = sorted(by_subject.items(), key=lambda kv: -max(_value(h) for h in kv[1]))
    parts = []
    for subject, mine in ranked[:most]:
        metrics = ", ".join(f"{h.metric.upper() if h.metric in ('psi', 'ks') else h.metric} "
                            f"{_value(h):.3f} >= {_threshold(h):.3g}" for h in mine)
        cause = next((h.cause for h in mine if h.cause), None)
        parts.append(f"{subject}: {metrics}" + (f"; likely cause: {cause}" if cause else ""))
    shown = f"; the worst {most}" if len(ranked) > most else ""
    return f"{len(ranked)} breached{shown}: " + " | ".join(parts)


# A breached record has both (breached means value >= threshold, both known).
def _value(r: MonitorRecord) -> float:
    assert r.value is not None, r
    return float(r.value)


def _threshold(r: MonitorRecord) -> float:
    assert r.threshold is not None, r
    return float(r.threshold)
