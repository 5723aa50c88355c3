"""The monitoring report: one self-contained HTML page (plots inlined) per monitor run.

Read top down, it answers in order: did anything breach, and where (the summary, one row per
table and window); what the alerts say to do; per predictions table, which features drifted
most in the latest judged window (sorted, with their likely causes), how their distributions
compare with training (histograms of the top ones), how their PSI moved over the windows, the
score distribution and the model's metric; last, the data-quality trend of the silver rules.
Plots show the top features only and time axes span the windows present, nothing more.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import math
import re
from collections.abc import Sequence
from typing import Any

import matplotlib.dates as mdates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lakeboost.monitor.drift import DriftResult
from lakeboost.monitor.estimate import DLE_METRICS
from lakeboost.monitor.records import ALL, LABEL_SUBJECT, MonitorRecord

TOP = 6  # features drawn per table
STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em 2em; color: #222; max-width: 1180px; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .6em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.breach td { background: #fde8e8; } span.ok { color: #1a7f37; font-weight: 600; }
span.bad { color: #c62828; font-weight: 600; } span.dim { color: #777; }
.notes { color: #555; font-size: .85em; } img { display: block; margin: .5em 0; max-width: 100%; }
"""


def render_report(records: Sequence[MonitorRecord], alerts: Sequence[Any],
                  drift: dict[tuple[str, Any], list[DriftResult]], *, title: str, window: str,
                  thresholds: dict[str, float], baseline: float | None, metric: str,
                  notes: Sequence[str], new_alerts: int, links: Sequence[tuple[str, str | None]] = ()) -> str:
    """The page: summary, alerts (each linked to its table's evidence), per-table drift (table,
    histograms, PSI over time), quality trend. `links`: (label, URL or None) of the model
    version, its training run and this monitor run, shown under the title."""
    sliced = [r for r in records if r.slice != ALL]
    records = [r for r in records if r.slice == ALL]
    tables = sorted({r.table for r in records if r.kind != "data_quality"})
    linked = " · ".join(f"<a href='{html.escape(url)}'>{html.escape(label)}</a>" if url else html.escape(label)
                        for label, url in links)
    sections = [f"<h1>{html.escape(title)}</h1>", f"<p class='links'>{linked}</p>" if linked else "",
                "<ul class='notes'>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>",
                _summary(records, tables, metric, window), _alerts_table(alerts, new_alerts)]
    for table in tables:
        sections.append(f"<h2 id='{_anchor(table)}'>{html.escape(table)}</h2>")
        sections += _table_sections(records, drift, table, thresholds, baseline, metric)
        sections.append(_distributions(records, table, metric))
        sections.append(_profile_table(records, drift, table))
        sections.append(_slices_section(sliced, table, metric))
    sections.append(_quality_section(records, thresholds["failure_rate"]))
    return ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) +
            f"</title><style>{STYLE}</style></head><body>" + "\n".join(s for s in sections if s) + "</body></html>")


def _summary(records: Sequence[MonitorRecord], tables: list[str], metric: str, window: str) -> str:
    rows, breached_windows = [], 0
    for table in tables:
        mine = [r for r in records if r.table == table]
        for start in sorted({r.window_start for r in mine}, key=str):
            here = [r for r in mine if r.window_start == start and r.kind != "profile"]
            drift = [r for r in here if r.kind == "feature_drift" and r.subject != "*"]
            psi = [r for r in drift if r.metric == "psi" and r.value is not None]
            hit = sorted({r.subject for r in drift if r.breached})
            worst = max(psi, key=lambda r: r.value or 0.0, default=None)  # psi holds valued records only
            score = next((r for r in here if r.kind == "prediction_drift"), None)
            perf = next((r for r in here if r.kind == "performance" and r.metric == metric), None)
            low, high = (next((r.value for r in here if r.kind == "performance" and r.metric == f"{metric}_{end}"),
                              None) for end in ("low", "high"))
            interval = f" <span class='dim'>[{low:.3f}–{high:.3f}]</span>" if low is not None and high is not None \
                else ""
            breach = any(r.breached for r in here)
            breached_windows += breach
            status = next((r.status for r in here if r.status != "ok"), "ok") if not psi else "judged"
            drifted = f"{len(hit)} of {len(psi)}" + (": " + html.escape(", ".join(hit[:4])) if hit else "") \
                + ("…" if len(hit) > 4 else "")
            missing = sorted({r.subject for r in here if r.kind == "missing_data" and r.breached})
            if missing:  # a NULL share that rose past its own bar: a feed that stopped
                drifted += "; <span class='bad'>missing data</span>: " + html.escape(", ".join(missing[:4]))
            largest = "-" if worst is None else f"{html.escape(worst.subject)} ({worst.value:.2f})"
            perf_note = "" if perf is None or perf.status in ("ok", "evaluated") else \
                f" <span class='dim'>({html.escape(perf.status)})</span>"
            estimated = next((r for r in here if r.kind == "estimated_performance" and r.metric == metric), None)
            if estimated is not None and estimated.value is not None:
                perf_note += (f" <span class='{'bad' if estimated.breached else 'dim'}'>est. "
                              f"{estimated.value:.3f}</span>")
            rows.append(
                f"<tr class='{'breach' if breach else ''}' data-table='{html.escape(table)}' "
                f"data-window='{_day(start)}'><td>{html.escape(table)}</td><td>{_day(start)}</td>"
                f"<td class='num' data-metric='rows'>{max((r.rows or 0) for r in here)}</td>"
                f"<td>{html.escape(status)}</td><td>{_verdict(breach)}</td><td>{drifted}</td><td>{largest}</td>"
                f"<td class='num' data-metric='score_psi'>{_number(score.value if score else None, 3)}</td>"
                f"<td class='num' data-metric='{html.escape(metric)}'>{_number(perf.value if perf else None, 3)}"
                f"{interval}{perf_note}</td></tr>")
    judged = len(rows)
    verdict = (f"<p><span class='bad'>{breached_windows} of {judged} window(s) breached.</span></p>" if breached_windows
               else f"<p><span class='ok'>No breach in {judged} window(s).</span></p>")
    head = ("<tr><th>table</th><th>window</th><th>rows</th><th>status</th><th>verdict</th>"
            "<th>features drifted (PSI or KS over threshold)</th><th>largest PSI</th><th>score PSI</th>"
            f"<th>{html.escape(metric)}</th></tr>")
    return (f"<h2>Summary ({html.escape(window)}ly windows)</h2>{verdict}<table>{head}{''.join(rows)}</table>"
            if rows else "<h2>Summary</h2><p>No predictions to judge yet.</p>")


def _alerts_table(alerts: Sequence[Any], new_alerts: int) -> str:
    if not alerts:
        return "<h2>Alerts</h2><p><span class='ok'>none</span></p>"
    def evidence(table: str) -> str:  # data-quality alerts have their section at the end
        target = "quality" if table == "silver" else _anchor(table)
        return f"<a href='#{target}'>{html.escape(table)}</a>"

    rows = "".join(f"<tr><td>{html.escape(a.kind)}</td><td>{evidence(a.table)}</td><td>{_day(a.window_start)}</td>"
                   f"<td>{html.escape(a.message)}</td></tr>" for a in alerts)
    return (f"<h2>Alerts ({len(alerts)}, {new_alerts} new in this run)</h2><table><tr><th>kind</th><th>table</th>"
            f"<th>window</th><th>what breached, and the likely cause</th></tr>{rows}</table>")


def _table_sections(records: Sequence[MonitorRecord], drift: dict[tuple[str, Any], list[DriftResult]], table: str,
                    thresholds: dict[str, float], baseline: float | None, metric: str) -> list[str]:
    out = []
    judged = sorted((w for t, w in drift if t == table), key=str)
    if judged:
        latest = judged[-1]
        results = sorted(drift[(table, latest)], key=lambda r: -r.psi)
        here = [r for r in records if r.kind == "feature_drift" and r.table == table
                and r.window_start == latest]
        causes = {r.subject: r.cause for r in here if r.cause}
        bars = {(r.subject, r.metric): r.threshold for r in here if r.threshold is not None}
        out.append(f"<h3>Features by drift, window of {_day(latest)}</h3>" + _drift_table(results, causes, bars))
        top = results[:TOP]
        out.append(_img(_histograms(top, latest), f"reference vs current, top {len(top)} features"))
    series, psi_bars = _series(records, "feature_drift", "psi", table), _bars(records, "feature_drift", "psi", table)
    if series:
        ranked = sorted(series, key=lambda f: -max(v for _, v in series[f]))[:TOP]
        # Each feature's own bar (dashed, its colour): the one its alert was decided by.
        out.append(_img(_line_plot({f: series[f] for f in ranked}, title=f"PSI per window, top {len(ranked)} "
                                   "features, each against its own bar (dashed)", ylabel="PSI",
                                   bars={f: psi_bars[f] for f in ranked if f in psi_bars}), "feature PSI over windows"))
    steps = _series(records, "window_drift", "psi", table)
    if steps:
        ranked = sorted(steps, key=lambda f: -max(v for _, v in steps[f]))[:TOP]
        out.append(_img(_line_plot({f: steps[f] for f in ranked}, title=f"PSI against the previous window, top "
                                   f"{len(ranked)} features (a jump from one window to the next)", ylabel="PSI"),
                        "feature PSI between consecutive windows"))
    score = _series(records, "prediction_drift", "psi", table)
    if score:
        out.append(_img(_line_plot(score, title="score distribution PSI per window", ylabel="PSI",
                                   bars=_bars(records, "prediction_drift", "psi", table)), "score PSI over windows"))
    perf_lines: Series = {}
    perf_bands: Bands = {}
    perf_bars: Series = {}
    # A regression model's MAE and RMSE are estimated by its loss model (DLE), a binary model's
    # metrics from its calibrated scores (CBPE).
    method = "DLE" if metric in DLE_METRICS else "CBPE"
    for kind, name in (("performance", "realized (labels matured)"),
                       ("estimated_performance", f"estimated ({method})")):
        found = _series(records, kind, metric, table).get("model")
        if found:
            perf_lines[name] = found
            perf_bands[name] = (_series(records, kind, f"{metric}_low", table).get("model", []),
                                _series(records, kind, f"{metric}_high", table).get("model", []))
            judged = _bars(records, kind, metric, table).get("model", [])
            if judged:
                perf_bars[name] = judged
    if perf_lines:
        out.append(_img(_line_plot(perf_lines, title=f"{metric} per window: realized (labels matured) and estimated "
                                   f"({method})\n95% intervals shaded, decay bound dashed",
                                   ylabel=metric, baseline=baseline, bars=perf_bars, bands=perf_bands),
                        f"{metric} over windows"))
    return out


def _drift_table(results: list[DriftResult], causes: dict[str, str], bars: dict[tuple[str, str], float],
                 shown: int = 15) -> str:
    """One row per feature; `bars` (feature, metric) -> its alert threshold in this window."""
    def row(r: DriftResult) -> str:
        psi_bar, ks_bar = bars.get((r.feature, "psi"), math.inf), bars.get((r.feature, "ks"), math.inf)
        breach = r.psi >= psi_bar or (r.ks is not None and r.ks >= ks_bar)
        ref_null, cur_null = r.null_shares
        return (f"<tr class='{'breach' if breach else ''}'><td>{html.escape(r.feature)}</td><td>{r.kind}</td>"
                f"<td class='num'>{r.psi:.3f}</td><td class='num'>{_number(psi_bar, 2)}</td>"
                f"<td class='num'>{_number(r.ks, 3)}</td>"
                f"<td class='num'>{ref_null:.0%} → {cur_null:.0%}</td>"
                f"<td>{html.escape(causes.get(r.feature, '')) if breach else ''}</td></tr>")

    head = ("<tr><th>feature</th><th>kind</th><th>PSI</th><th>PSI bar</th><th>KS</th><th>NULL (training → now)</th>"
            "<th>likely cause</th></tr>")
    rest = results[shown:]
    more = (f"<details><summary>{len(rest)} more features</summary><table>{head}{''.join(map(row, rest))}"
            "</table></details>" if rest else "")
    return f"<table>{head}{''.join(map(row, results[:shown]))}</table>{more}"


def _histograms(results: list[DriftResult], window: Any) -> str:
    """Small multiples: each feature's PSI bins, training share next to the window's."""
    columns = 3
    rows = math.ceil(len(results) / columns)
    fig = Figure(figsize=(11, 2.9 * rows), dpi=90)
    FigureCanvasAgg(fig)
    for i, r in enumerate(results):
        ax = fig.add_subplot(rows, columns, i + 1)
        xs = range(len(r.bins))
        ax.bar([x - 0.2 for x in xs], r.reference_shares, width=0.4, label="training", color="#9e9e9e")
        ax.bar([x + 0.2 for x in xs], r.current_shares, width=0.4, label=f"window {_day(window)}", color="#1f77b4")
        ax.set_title(f"{r.feature}  (PSI {r.psi:.2f})", fontsize=9)
        ax.set_xticks(list(xs), [_tick(b) for b in r.bins], rotation=45, ha="right", fontsize=6)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_ylabel("share of rows", fontsize=7)
        if i == 0:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def _quality_section(records: Sequence[MonitorRecord], threshold: float) -> str:
    quality = _series(records, "data_quality", "failure_rate", "silver")
    if not quality:
        return ""
    ranked = sorted(quality, key=lambda f: -max(v for _, v in quality[f]))[:8]
    failing = [f for f in ranked if max(v for _, v in quality[f]) > threshold]
    words = (f"<p><span class='bad'>{len(failing)} rule(s) over {threshold:.0%}: {html.escape(', '.join(failing))}"
             "</span></p>" if failing else f"<p><span class='ok'>Every rule under {threshold:.0%} failures.</span></p>")
    png = _line_plot({f: quality[f] for f in ranked}, title=f"failure rate per window, top {len(ranked)} rules",
                     ylabel="failure rate", threshold=threshold)
    return ("<h2 id='quality'>Data quality (silver rules, windows by run time)</h2>" + words
            + _img(png, "data-quality trend"))


Series = dict[str, list[tuple[Any, float]]]


Bands = dict[str, tuple[list[tuple[Any, float]], list[tuple[Any, float]]]]


def _line_plot(series: Series, *, title: str, ylabel: str, threshold: float | None = None,
               baseline: float | None = None, bars: Series | None = None, bands: Bands | None = None) -> str:
    return _png(line_figure(series, title=title, ylabel=ylabel, threshold=threshold, baseline=baseline, bars=bars,
                            bands=bands))


def line_figure(series: Series, *, title: str, ylabel: str, threshold: float | None = None,
                baseline: float | None = None, bars: Series | None = None, bands: Bands | None = None) -> Figure:
    """One line per series over the windows; the time axis spans the windows present (a day
    either side at least: left to itself matplotlib spans years around a single date).
    `bars`: per series, the bar each window was judged against, dashed in the series' colour
    (bars differ by feature and window size: one red line for all would contradict the verdict)."""
    fig = Figure(figsize=(10, 3.3), dpi=90)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    times = []
    for name, points in sorted(series.items()):
        ordered = sorted(points, key=lambda p: str(p[0]))
        xs, ys = [_as_datetime(p[0]) for p in ordered], [p[1] for p in ordered]
        times += xs
        [line] = ax.plot(mdates.date2num(xs), ys, marker="o", ms=4, lw=1.2, label=name)
        low, high = (dict((str(p[0]), p[1]) for p in side) for side in (bands or {}).get(name, ([], [])))
        inside = [(x, low[str(p[0])], high[str(p[0])]) for x, p in zip(xs, ordered, strict=True)
                  if str(p[0]) in low and str(p[0]) in high]
        if inside:
            at, lows, highs = mdates.date2num([i[0] for i in inside]), [i[1] for i in inside], [i[2] for i in inside]
            ax.fill_between(at, lows, highs, color=line.get_color(), alpha=0.15, label=f"{name}: 95% interval")
            ax.vlines(at, lows, highs, color=line.get_color(), alpha=0.5, lw=1)  # seen for a lone window too
        judged = sorted((bars or {}).get(name, []), key=lambda p: str(p[0]))
        if judged:
            ax.plot(mdates.date2num([_as_datetime(p[0]) for p in judged]), [p[1] for p in judged], ls="--",
                    lw=0.9, color=line.get_color(), marker="_", ms=10, label=f"{name}: bar")
    if threshold is not None:
        ax.axhline(threshold, color="red", ls="--", lw=1, label=f"alert threshold {threshold:g}")
    if baseline is not None:
        ax.axhline(baseline, color="grey", ls=":", lw=1, label=f"at training {baseline:.3f}")
    _time_axis(ax, times, maxticks=8)
    ax.set(title=title, ylabel=ylabel)
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def _time_axis(ax: Any, times: Sequence[dt.datetime], *, maxticks: int) -> None:
    """The x axis over the windows present, a day either side at least (left to itself
    matplotlib spans years around a single date), with concise date ticks."""
    first, last = min(times), max(times)
    pad = max((last - first) * 0.05, dt.timedelta(days=1))
    ax.set_xlim(float(mdates.date2num(first - pad)), float(mdates.date2num(last + pad)))
    locator = mdates.AutoDateLocator(maxticks=maxticks)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _bars(records: Sequence[MonitorRecord], kind: str, metric: str, table: str) -> Series:
    """Per subject, (window, the threshold it was judged against)."""
    out: Series = {}
    for r in records:
        if r.kind == kind and r.metric == metric and r.table == table and r.threshold is not None \
                and r.window_start is not None:
            out.setdefault(r.subject, []).append((r.window_start, r.threshold))
    return out


def _series(records: Sequence[MonitorRecord], kind: str, metric: str, table: str) -> Series:
    out: dict[str, list[tuple[Any, float]]] = {}
    for r in records:
        if r.kind == kind and r.metric == metric and r.table == table and r.value is not None \
                and r.window_start is not None:
            out.setdefault(r.subject, []).append((r.window_start, r.value))
    return out


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode()


def _img(png: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{png}">'


def _anchor(table: str) -> str:
    return "table-" + "".join(c if c.isalnum() else "-" for c in table)


def _as_datetime(value: Any) -> dt.datetime:
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))


def _day(value: Any) -> str:
    return "-" if value is None else f"{_as_datetime(value):%Y-%m-%d}"


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None or math.isinf(value) else f"{value:.{digits}f}"


def _verdict(breach: bool) -> str:
    return "<span class='bad'>ALERT</span>" if breach else "<span class='ok'>ok</span>"


def _tick(label: str) -> str:
    """A numeric bin's tick, whole: its upper edge to 3 significant digits (`(0.006278, 0.01234]`
    is `≤0.0123`; cut to its first characters it read `(0.006278, 0....`); categories shortened."""
    match = re.fullmatch(r"\((\S+), (\S+)\]|<= (\S+)|> (\S+)", label)
    if match is None:
        return _short(label)
    upper, first, last = match.group(2), match.group(3), match.group(4)
    try:
        return f">{float(last):.3g}" if last is not None else f"≤{float(upper or first):.3g}"
    except ValueError:
        return _short(label)


def _short(label: str, most: int = 14) -> str:
    return label if len(label) <= most else label[: most - 1] + "…"


def _distributions(records: Sequence[MonitorRecord], table: str, metric: str) -> str:
    """The score's and the label's distributions per window, side by side: the score's 5th, 50th
    and 95th percentiles and mean; the label's mean as known so far (a binary label's: the share
    of positives reported; hollow where the window's labels are still maturing)."""
    def profile(subject: str, name: str) -> dict[Any, MonitorRecord]:
        return {r.window_start: r for r in records if r.table == table and r.kind == "profile"
                and r.subject == subject and r.metric == name and r.value is not None and r.window_start is not None}

    score = {name: profile("score", name) for name in ("p05", "p50", "p95", "mean")}
    label = profile(LABEL_SUBJECT, "mean")
    if not score["p50"]:
        return ""
    fig = Figure(figsize=(11, 3.2), dpi=90)
    FigureCanvasAgg(fig)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    windows = sorted(score["p50"], key=str)
    xs = mdates.date2num([_as_datetime(w) for w in windows])
    def at(name: str) -> list[float]:  # NaN where a window lacks it: the line breaks there
        return [float(r.value) if (r := score[name].get(w)) is not None and r.value is not None else math.nan
                for w in windows]

    band = left.fill_between(xs, at("p05"), at("p95"), alpha=0.2, label="5th-95th percentile")
    left.vlines(xs, at("p05"), at("p95"), color=band.get_facecolor(), lw=3)  # seen for a lone window too
    left.plot(xs, at("p50"), marker="o", ms=4, label="median")
    left.plot(xs, at("mean"), ls="--", label="mean")
    left.set(title="score per window", ylabel="score")
    if label:
        known = sorted(label, key=str)
        mature = [w for w in known if label[w].status == "ok"]
        pending = [w for w in known if label[w].status != "ok"]
        for chosen, style, name in ((mature, "o", "labels matured"), (pending, "o", "labels still arriving")):
            if chosen:
                right.plot(mdates.date2num([_as_datetime(w) for w in chosen]),
                           [float(label[w].value or 0.0) for w in chosen],
                           marker=style, ls="-" if chosen is mature else "", ms=5, label=name,
                           mfc="none" if chosen is pending else None)
        right.set(title="label mean per window (known so far)", ylabel="label mean")
    for ax in (left, right):
        _time_axis(ax, [_as_datetime(w) for w in windows], maxticks=6)
        ax.tick_params(labelsize=8)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return "<h3>Prediction and label distributions over time</h3>" + _img(_png(fig), "score and label per window")


def _profile_table(records: Sequence[MonitorRecord], drift: dict[tuple[str, Any], list[DriftResult]],
                   table: str, shown: int = TOP) -> str:
    """Each column's profile per window: median [5th-95th percentile] and NULL share for numbers,
    distinct values and NULL share for categories; the rows per window and their shortfall
    against training (`row_drop`) first. The most drifted columns first, the rest folded."""
    mine = [r for r in records if r.table == table and r.window_start is not None
            and (r.kind == "profile" or (r.kind == "missing_data" and r.subject == "rows"))]
    if not mine:
        return ""
    windows = sorted({r.window_start for r in mine}, key=str)
    values = {(r.subject, r.metric, r.window_start): r for r in mine}
    judged = sorted((w for t, w in drift if t == table), key=str)
    order = [r.feature for r in sorted(drift[(table, judged[-1])], key=lambda r: -r.psi)] if judged else []
    columns = [c for c in dict.fromkeys([*order, *sorted({r.subject for r in mine if r.kind == "profile"})])
               if c not in ("*", LABEL_SUBJECT, "score", "rows")]

    def cell(column: str, window: Any) -> str:
        get = lambda metric: values.get((column, metric, window))  # noqa: E731
        null = get("null_share")
        if get("p50") is not None:
            p05, p50, p95 = (get(m) for m in ("p05", "p50", "p95"))
            text = f"{_short_number(p50)} [{_short_number(p05)}–{_short_number(p95)}]"
        elif get("distinct") is not None:
            text = f"{int(get('distinct').value or 0)} distinct"  # type: ignore[union-attr]
        else:
            return "<td>-</td>"
        nulls = f" · NULL {null.value:.0%}" if null is not None and null.value else ""
        return f"<td class='num'>{text}{nulls}</td>"

    def rows_cell(window: Any) -> str:
        rows, drop = values.get(("*", "rows", window)), values.get(("rows", "row_drop", window))
        text = f"{int(rows.value or 0)}" if rows is not None else "-"
        if drop is not None and drop.value is not None:
            cls = "bad" if drop.breached else "dim"
            text += f" <span class='{cls}'>({-drop.value:+.0%} vs training, bar -{drop.threshold:.0%})</span>"
        return f"<td class='num' data-metric='profile_rows'>{text}</td>"

    head = "<tr><th>column</th>" + "".join(f"<th>{_day(w)}</th>" for w in windows) + "</tr>"
    first = "<tr><td>rows</td>" + "".join(rows_cell(w) for w in windows) + "</tr>"
    body = ["<tr><td>" + html.escape(c) + "</td>" + "".join(cell(c, w) for w in windows) + "</tr>"
            for c in ["score", *columns]]
    rest = body[shown + 1:]
    more = (f"<details><summary>{len(rest)} more columns</summary><table>{head}{''.join(rest)}</table></details>"
            if rest else "")
    return ("<h3>Column profiles per window</h3><p class='notes'>numbers: median [5th–95th percentile]; "
            "categories: distinct values; NULL share where any</p>"
            f"<table>{head}{first}{''.join(body[:shown + 1])}</table>{more}")


def _slices_section(sliced: Sequence[MonitorRecord], table: str, metric: str) -> str:
    """Per slice value and window: rows, the score's PSI against the same slice of training, and
    the model's metric with its interval: realized once labels matured (and the slice has enough),
    else estimated before the labels (CBPE or DLE; shown, not judged)."""
    mine = [r for r in sliced if r.table == table and r.window_start is not None]
    if not mine:
        return ""
    windows = sorted({r.window_start for r in mine}, key=str)
    values = {(r.slice, r.kind, r.metric, r.window_start): r.value for r in mine}
    out = []
    for column in sorted({r.slice.split("=", 1)[0] for r in mine}):
        parts = sorted({r.slice for r in mine if r.slice.split("=", 1)[0] == column},
                       key=lambda p: -sum(values.get((p, "profile", "rows", w)) or 0 for w in windows))

        def cell(part: str, window: Any) -> str:
            rows = values.get((part, "profile", "rows", window))
            psi_value = values.get((part, "prediction_drift", "psi", window))
            text = f"{int(rows or 0)} rows"
            text += f" · score PSI {psi_value:.2f}" if psi_value is not None else ""
            for kind, name in (("performance", metric), ("estimated_performance", f"est. {metric}")):
                value = values.get((part, kind, metric, window))
                low, high = (values.get((part, kind, f"{metric}_{end}", window)) for end in ("low", "high"))
                if value is not None:  # the realized value once labels matured, else the estimate
                    text += f" · {name} {value:.3f}" + (f" [{low:.2f}–{high:.2f}]" if low is not None
                                                        and high is not None else "")
                    break
            return f"<td class='num'>{text}</td>"

        head = f"<tr><th>{html.escape(column)}</th>" + "".join(f"<th>{_day(w)}</th>" for w in windows) + "</tr>"
        body = "".join(f"<tr><td>{html.escape(p.split('=', 1)[1])}</td>" + "".join(cell(p, w) for w in windows)
                       + "</tr>" for p in parts)
        out.append(f"<h4>by {html.escape(column)}</h4><table>{head}{body}</table>")
    return ("<h3>Slices</h3><p class='notes'>per value of each <code>monitor.slices</code> column: rows, the score's "
            "PSI against the same value in training, the model's metric realized once labels matured, else estimated "
            "(est.; shown, not judged)</p>"
            + "".join(out))


def _short_number(r: MonitorRecord | None) -> str:
    return "-" if r is None or r.value is None else f"{r.value:.3g}"
