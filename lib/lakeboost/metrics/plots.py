"""Evaluation plots as small PNG files (for MLflow artifacts), drawn from aggregates only.

Figures are rendered by the Agg canvas directly, without pyplot: a library must not switch the
process-wide backend (a notebook's inline one, say) nor leave figures in pyplot's global registry.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import date2num
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lakeboost.metrics.base import EvaluationError
from lakeboost.metrics.binary import BinaryCurve, pr_points, roc_points, trapezoid
from lakeboost.metrics.calibration import CalibrationSummary

log = logging.getLogger(__name__)

DPI = 100
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@contextmanager
def _figure(path: str, size: tuple[float, float] = (5.0, 4.0)) -> Iterator[Axes]:
    """Yield the axes of a fresh figure; on exit save it as a PNG at `path`."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(fig)
    yield fig.add_subplot()
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=DPI)
    log.debug("wrote plot %s", path)


def plot_roc_pr(curve: BinaryCurve, path_dir: str) -> list[str]:
    """roc.png and pr.png from the binned curve; the areas in the titles are the binned ones."""
    roc_path, pr_path = os.path.join(path_dir, "roc.png"), os.path.join(path_dir, "pr.png")
    fpr, tpr = roc_points(curve)
    with _figure(roc_path) as ax:
        ax.plot(fpr, tpr, lw=1.5)
        ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01),
               title=f"ROC (AUC {trapezoid(fpr, tpr):.3f})")
    recall, precision = pr_points(curve)
    base_rate = curve.positives / max(curve.positives + curve.negatives, 1)
    with _figure(pr_path) as ax:
        ax.plot(recall, precision, lw=1.5)
        ax.axhline(base_rate, ls="--", c="grey", lw=0.8, label=f"base rate {base_rate:.3f}")
        ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01),
               title=f"Precision-recall (AUC {trapezoid(recall, precision):.3f})")
        ax.legend(loc="upper right")
    return [roc_path, pr_path]


def plot_calibration(summaries: dict[str, CalibrationSummary], path_dir: str) -> str:
    """calibration.png: observed positive rate against mean score per score bin (reliability
    diagram), one line per score column (raw and calibrated), with each one's Brier and ECE."""
    path = os.path.join(path_dir, "calibration.png")
    with _figure(path, size=(5.0, 4.4)) as ax:
        ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8, label="perfectly calibrated")
        for name, summary in summaries.items():
            if summary.bins:
                mean_score, rate, _ = zip(*summary.bins, strict=True)
                ax.plot(mean_score, rate, marker="o", lw=1.5,
                        label=f"{name} (Brier {summary.brier:.4f}, ECE {summary.ece:.4f})")
        ax.set(xlabel="mean predicted probability", ylabel="observed positive rate", xlim=(0, 1), ylim=(0, 1),
               title="Calibration")
        ax.legend(loc="upper left", fontsize=8)
    return path


def plot_over_time(series: list[tuple[float, float, float, int]], path_dir: str, *, name: str,
                   title: str, ylabel: str = "value", last_days: float | None = None) -> str:
    """<name>.png: mean actual and mean predicted value per time bucket (`over_time`), and below
    it a strip of the residual (predicted - actual). No line is drawn across a gap in the data
    (a bucket missing between two others); `last_days`: only the series' last days (a zoom)."""
    if not _SAFE_NAME.match(name):
        raise EvaluationError(f"plot name {name!r} must match {_SAFE_NAME.pattern}: it becomes the file name")
    if last_days is not None and series:
        since = series[-1][0] - last_days * 86400
        series = [point for point in series if point[0] >= since]
    path = os.path.join(path_dir, f"{name}.png")
    os.makedirs(path_dir, exist_ok=True)
    fig = Figure(figsize=(11.0, 4.8), dpi=DPI)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    if series:
        times = [float(d) for d in date2num([dt.datetime.fromtimestamp(t, dt.UTC).replace(tzinfo=None)
                                             for t, _, _, _ in series])]
        step = min((b - a for a, b in itertools.pairwise(times)), default=1.0)
        actual, predicted = _broken([a for _, a, _, _ in series], times, step), \
            _broken([p for _, _, p, _ in series], times, step)
        at = _broken(times, times, step)
        top.plot(at, actual, lw=0.9, label="actual")
        top.plot(at, predicted, lw=0.9, label="predicted")
        residual = [p - a if p == p and a == a else float("nan") for a, p in zip(actual, predicted, strict=True)]
        bottom.plot(at, residual, lw=0.7, color="grey")
        bottom.axhline(0.0, color="black", lw=0.6)
        top.set_xlim(times[0], times[-1] + step)
        top.xaxis_date()
        top.legend(loc="upper left")
    else:
        top.text(0.5, 0.5, "no predictions", ha="center", va="center")
    top.set(title=title, ylabel=ylabel)
    bottom.set(ylabel="predicted - actual")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=DPI)
    return path


def _broken(values: list[float], times: list[float], step: float) -> list[float]:
    """`values` with a NaN after each point followed by a gap (more than 1.5 buckets), so the
    line stops there instead of joining the two sides of the gap."""
    out: list[float] = []
    for i, value in enumerate(values):
        out.append(value)
        if i + 1 < len(times) and times[i + 1] - times[i] > 1.5 * step:
            out.append(float("nan"))
    return out


def plot_confusion(metrics: dict[str, float], path_dir: str) -> str:
    """confusion.png: the 2x2 counts at the chosen threshold from `binary_metrics` output."""
    missing = [k for k in ("tp", "fp", "fn", "tn") if k not in metrics]
    if missing:
        raise EvaluationError(f"metrics lack {missing}; pass the dict returned by binary_metrics")
    cells = [[metrics["tn"], metrics["fp"]], [metrics["fn"], metrics["tp"]]]
    total = max(sum(map(sum, cells)), 1)
    path = os.path.join(path_dir, "confusion.png")
    with _figure(path, size=(4.0, 3.6)) as ax:
        ax.imshow(cells, cmap="Blues")
        for r in range(2):
            for c in range(2):
                ax.text(c, r, f"{int(cells[r][c])}\n{cells[r][c] / total:.1%}", ha="center", va="center")
        ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["0", "1"], yticklabels=["0", "1"],
               xlabel="predicted", ylabel="actual")
        threshold = metrics.get("threshold")
        ax.set_title("Confusion" + (f" at {threshold:.3f}" if threshold is not None else ""))
    return path


def plot_feature_importance(importance: dict[str, float], path_dir: str, *, top: int = 25) -> str:
    """feature_importance.png: horizontal bars of the `top` largest gains, largest at the top."""
    ranked = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:top]
    path = os.path.join(path_dir, "feature_importance.png")
    with _figure(path, size=(6.0, max(2.0, 0.25 * len(ranked) + 1.0))) as ax:
        if ranked:
            names, gains = zip(*reversed(ranked), strict=True)  # barh draws the first bar at the bottom
            ax.barh(range(len(names)), gains)
            ax.set_yticks(range(len(names)), labels=names, fontsize=7)
        else:
            ax.text(0.5, 0.5, "no feature importance", ha="center", va="center")
        ax.set(xlabel="gain", title=f"Feature importance (top {len(ranked)})")
    return path


def plot_series(values: list[float], path_dir: str, *, name: str, title: str, best_so_far: bool = True,
                maximize: bool = True) -> str:
    """<name>.png: a metric per trial, with the best value so far (max, or min when not `maximize`)."""
    if not _SAFE_NAME.match(name):
        raise EvaluationError(f"plot name {name!r} must match {_SAFE_NAME.pattern}: it becomes the file name")
    path = os.path.join(path_dir, f"{name}.png")
    trials = list(range(1, len(values) + 1))
    with _figure(path, size=(6.0, 3.6)) as ax:
        ax.plot(trials, values, marker="o", ls="", ms=3, label=name)
        if best_so_far and values:
            pick = max if maximize else min
            best = [pick(values[: i + 1]) for i in range(len(values))]
            ax.step(trials, best, where="post", lw=1.5, label="best so far")
        ax.set(xlabel="trial", ylabel=name, title=title)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(loc="best")
    return path
