"""The predictions-vs-actual series: bounded time buckets, and its plot."""

from __future__ import annotations

from pathlib import Path

import pytest
from lakeboost.metrics import plots
from lakeboost.metrics.base import LABEL
from lakeboost.metrics.over_time import over_time
from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def test_over_time_averages_actual_and_predicted_per_bounded_time_bucket(spark: SparkSession, tmp_path: Path) -> None:
    rows = [(i * 3600 + 600, float(i), float(i) + 0.5) for i in range(100)]  # 100 hours, 10 past each hour
    df = spark.createDataFrame(rows, f"t long, {LABEL} double, prediction double") \
        .withColumn("t", F.timestamp_seconds("t"))
    # Few enough points: every hour its own bucket (5-minute buckets, the finest that fit 100 hours).
    hourly = over_time(df, time="t", points=3000)
    assert [(t, a, p, n) for t, a, p, n in hourly] == [(i * 3600.0 + 600, float(i), i + 0.5, 1) for i in range(100)]
    # Too many for 10 points: the finest whole unit that fits, a day (100 h / 6 h = 17 buckets > 10).
    daily = over_time(df, time="t", points=10)
    assert [t for t, *_ in daily] == [0.0, 86400.0, 2 * 86400.0, 3 * 86400.0, 4 * 86400.0]
    assert sum(n for *_, n in daily) == 100 and daily[0][1] == pytest.approx(11.5)  # hours 0..23
    gapped = [p for p in hourly if not 40 <= p[0] / 3600 < 60]  # 20 hours missing
    png = Path(plots.plot_over_time(gapped, str(tmp_path), name="test_over_time", title="t", ylabel="rentals"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Path(plots.plot_over_time(gapped, str(tmp_path), name="zoom", title="t", last_days=1)).exists()


def test_a_gap_breaks_the_line_instead_of_joining_its_sides() -> None:
    times = [0.0, 1.0, 2.0, 10.0, 11.0]
    assert [v != v for v in plots._broken([5.0, 6.0, 7.0, 8.0, 9.0], times, 1.0)] == \
        [False, False, False, True, False, False]
