"""The monitoring report's page on hand-made records: summary first, features sorted by drift,
only the top ones drawn, time axes bounded to the windows, and every image a real PNG."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re

import matplotlib.dates as mdates
from lakeboost.monitor.drift import DriftResult
from lakeboost.monitor.records import MonitorRecord
from lakeboost.monitor.report import TOP, line_figure, render_report
from matplotlib.collections import LineCollection
from matplotlib.image import imread

WEEKS = [dt.datetime(2026, 3, 2) + dt.timedelta(weeks=i) for i in range(3)]
THRESHOLDS = {"psi": 0.2, "ks": 0.2, "prediction_psi": 0.2, "failure_rate": 0.01}


def record(table, window, kind, subject, metric, value, threshold, *, cause=None, rows=500,
           status="ok") -> MonitorRecord:
    breached = value is not None and threshold is not None and value >= threshold
    return MonitorRecord(table, window, 1, kind, subject, metric, value, threshold, breached, rows, status,
                         cause if breached else None)


def result(feature: str, psi: float) -> DriftResult:
    return DriftResult(feature, "numeric", psi, 0.1, None, None, bins=("<= 1", "> 1", "NULL"),
                       reference_shares=(0.5, 0.5, 0.0), current_shares=(0.3, 0.7, 0.0), current_rows=500)


def test_summary_first_features_sorted_and_only_the_top_drawn() -> None:
    features = {f"f{i:02d}": 0.01 * i for i in range(40)}
    features["amount"] = 1.5
    records, drift = [], {}
    for w, week in enumerate(WEEKS):
        for name, psi in features.items():
            value = psi if w == 2 else psi / 10
            records.append(record("gold.p", week, "feature_drift", name, "psi", value, 0.2,
                                  cause="the values moved higher than in training" if name == "amount" else None))
        records.append(record("gold.p", week, "prediction_drift", "score", "psi", 0.05, 0.2))
        drift[("gold.p", week)] = [result(n, p if w == 2 else p / 10) for n, p in features.items()]
    records.append(record("silver", WEEKS[0], "data_quality", "transactions:amount_positive", "failure_rate",
                          0.002, 0.01))

    page = render_report(records, [], drift, title="t", window="week", thresholds=THRESHOLDS, baseline=0.4,
                         metric="pr_auc", notes=["n"], new_alerts=0)

    # The summary comes before any plot and names the breached window and feature.
    summary, rest = page.split("<img", 1)
    assert "1 of 3 window(s) breached" in summary and "amount (1.50)" in summary
    # Features by drift: the largest first, with its cause; 15 rows, the rest folded away.
    table = re.search(r"Features by drift, window of 2026-03-16</h3><table>(.*?)</table>", page).group(1)
    assert re.findall(r"<tr class='[a-z]*'><td>([^<]+)</td>", table)[:3] == ["amount", "f39", "f38"]
    assert "the values moved higher than in training" in table and "26 more features" in page
    # Histograms of the top features, one PSI plot of the top features only, the score plot,
    # the quality trend: four images, each a PNG of sensible size.
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 4
    for png in images:
        pixels = imread(io.BytesIO(base64.b64decode(png)))
        assert pixels.shape[0] > 200 and pixels.shape[1] > 600
    legend = re.search(r'alt="feature PSI over windows"', page)
    assert legend and TOP == 6


def test_time_axis_spans_the_windows_present() -> None:
    one = line_figure({"x": [(WEEKS[0], 0.1)]}, title="one window", ylabel="PSI").axes[0]
    three = line_figure({"x": [(w, 0.1) for w in WEEKS]}, title="three", ylabel="PSI").axes[0]

    lo, hi = (mdates.num2date(x).replace(tzinfo=None) for x in one.get_xlim())
    assert (lo, hi) == (WEEKS[0] - dt.timedelta(days=1), WEEKS[0] + dt.timedelta(days=1))
    lo, hi = (mdates.num2date(x).replace(tzinfo=None) for x in three.get_xlim())
    assert WEEKS[0] - dt.timedelta(days=2) < lo < WEEKS[0] and WEEKS[-1] < hi < WEEKS[-1] + dt.timedelta(days=2)


def test_a_lone_windows_interval_is_drawn_as_a_segment() -> None:
    """One window's estimate (the bike e2e's single scored day): a shaded band between one point
    is invisible, so each interval is also a vertical segment from its low to its high."""
    ax = line_figure({"rmse": [(WEEKS[0], 29.1)]}, title="rmse", ylabel="rmse",
                     bands={"rmse": ([(WEEKS[0], 14.5)], [(WEEKS[0], 59.4)])}).axes[0]
    [segments] = [c for c in ax.collections if isinstance(c, LineCollection)]
    [(start, end)] = [tuple(map(tuple, s)) for s in segments.get_segments()]
    assert (start[1], end[1]) == (14.5, 59.4) and start[0] == end[0] == mdates.date2num(WEEKS[0])


def test_each_series_is_drawn_against_the_bar_it_was_judged_by() -> None:
    """Two features with bars 0.9 and 0.2 (one window judged at a partial week's 1.4): each
    feature's bar is a dashed line in its own colour at the recorded values, and no one fixed
    line contradicts them (a point at 0.29 under its 0.9 bar reads as ok, as its row says)."""
    series = {"seasonal": [(w, 0.29) for w in WEEKS], "plain": [(w, 0.05) for w in WEEKS]}
    bars = {"seasonal": [(WEEKS[0], 0.9), (WEEKS[1], 0.9), (WEEKS[2], 1.4)], "plain": [(w, 0.2) for w in WEEKS]}
    ax = line_figure(series, title="PSI", ylabel="PSI", bars=bars).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"seasonal", "seasonal: bar", "plain", "plain: bar"}
    assert list(lines["seasonal: bar"].get_ydata()) == [0.9, 0.9, 1.4]
    assert list(lines["plain: bar"].get_ydata()) == [0.2, 0.2, 0.2]
    assert lines["seasonal: bar"].get_color() == lines["seasonal"].get_color()
    assert lines["seasonal: bar"].get_linestyle() == "--"


def test_numeric_bins_are_ticked_by_their_upper_edge_whole() -> None:
    from lakeboost.monitor.report import _tick

    assert [_tick(b) for b in ("<= 0.001234", "(0.006278, 0.01234]", "(12.5, 1.302e+04]", "> 1.302e+04", "NULL",
                               "a very long category name")] == [
        "≤0.00123", "≤0.0123", "≤1.3e+04", ">1.3e+04", "NULL", "a very long c…"]
