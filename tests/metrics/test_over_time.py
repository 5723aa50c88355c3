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
    rows = [(i * 3600, float(i), float(i) + 0.5) for i in range(100)]  # 100 hours
    df = spark.createDataFrame(rows, f"t long, {LABEL} double, prediction double") \
        .withColumn("t", F.timestamp_seconds("t"))
    series = over_time(df, time="t", points=10)
    assert len(series) == 10 and sum(n for *_, n in series) == 100
    first = series[0]
    assert first[0] == 0 and first[1] == pytest.approx(4.5) and first[2] == pytest.approx(5.0)  # hours 0..9
    png = Path(plots.plot_over_time(series, str(tmp_path), name="test_over_time", title="t"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
