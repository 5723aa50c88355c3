"""The monitoring report: one self-contained HTML page (plots inlined) per monitor run."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _line_plot(series: dict[str, list[tuple[Any, float]]], *, title: str, ylabel: str,
               threshold: float | None = None, baseline: float | None = None) -> str:
    """A PNG (base64) with one line per series over the windows."""
    fig = Figure(figsize=(7.5, 3.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, points in sorted(series.items()):
        if points:
            xs, ys = zip(*sorted(points, key=lambda p: str(p[0])), strict=True)
            ax.plot(xs, ys, marker="o", ms=3, lw=1, label=name)
    if threshold is not None:
        ax.axhline(threshold, color="red", ls="--", lw=1, label=f"alert threshold {threshold:g}")
    if baseline is not None:
        ax.axhline(baseline, color="grey", ls=":", lw=1, label=f"at training {baseline:.3f}")
    ax.set(title=title, ylabel=ylabel)
    ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=7, ncol=2)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode()


def _series(records: Sequence[dict], kind: str, metric: str, table: str) -> dict[str, list[tuple[Any, float]]]:
    out: dict[str, list[tuple[Any, float]]] = {}
    for r in records:
        if r["kind"] == kind and r["metric"] == metric and r["table"] == table and r["value"] is not None:
            out.setdefault(r["subject"], []).append((r["window_start"], r["value"]))
    return out


def render_report(records: Sequence[dict], alerts: Sequence[Any], *, title: str, thresholds: dict[str, float],
                  baseline: float | None, metric: str, notes: Sequence[str]) -> str:
    """HTML with drift, prediction drift, performance and data-quality plots, and the alerts."""
    sections = [f"<h1>{html.escape(title)}</h1>", "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes)
                + "</ul>"]
    alert_rows = "".join(
        f"<tr><td>{html.escape(a.kind)}</td><td>{html.escape(a.table)}</td><td>{a.window_start}</td>"
        f"<td>{html.escape(a.message)}</td></tr>" for a in alerts)
    sections.append("<h2>New alerts</h2>" + (f"<table border=1 cellpadding=3><tr><th>kind</th><th>table</th>"
                                            f"<th>window</th><th>message</th></tr>{alert_rows}</table>"
                                            if alerts else "<p>none</p>"))
    for table in sorted({r["table"] for r in records if r["kind"] != "data_quality"}):
        sections.append(f"<h2>{html.escape(table)}</h2>")
        plots = [
            (_series(records, "feature_drift", "psi", table), "feature PSI per window", "PSI",
             thresholds["psi"], None),
            (_series(records, "prediction_drift", "psi", table), "score distribution PSI per window", "PSI",
             thresholds["prediction_psi"], None),
            (_series(records, "performance", metric, table), f"{metric} per window (labels known so far)", metric,
             None, baseline),
        ]
        for series, plot_title, ylabel, threshold, base in plots:
            if any(series.values()):
                png = _line_plot(series, title=plot_title, ylabel=ylabel, threshold=threshold, baseline=base)
                sections.append(f'<img alt="{html.escape(plot_title)}" src="data:image/png;base64,{png}">')
    quality = _series(records, "data_quality", "failure_rate", "silver")
    if quality:
        png = _line_plot(quality, title="silver contract failure rate per window", ylabel="failure rate",
                         threshold=thresholds["failure_rate"])
        sections.append(f'<h2>Data quality</h2><img alt="data quality" src="data:image/png;base64,{png}">')
    return ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) +
            "</title></head><body style='font-family: sans-serif'>" + "\n".join(sections) + "</body></html>")
