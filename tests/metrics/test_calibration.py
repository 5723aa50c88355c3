"""The reliability table, ECE and Brier score, checked by hand."""

from __future__ import annotations

import pytest
from lakeboost.metrics.base import LABEL
from lakeboost.metrics.calibration import calibration_summary
from pyspark.sql import SparkSession


def test_calibration_summary_is_small_ordered_and_exact(spark: SparkSession) -> None:
    rows = [(1, 0.95), (0, 0.91), (0, 0.05), (0, 0.12), (1, 0.55)]
    df = spark.createDataFrame(rows, f"{LABEL} int, score double")
    summary = calibration_summary(df, bins=10)
    assert [n for _, _, n in summary.bins] == [1, 1, 1, 2]
    assert summary.brier == pytest.approx(sum((s - y) ** 2 for y, s in rows) / 5)
    # ECE by hand: bins 0.0-0.1, 0.1-0.2, 0.5-0.6, 0.9-1.0
    expected = (abs(0.05 - 0) + abs(0.12 - 0) + abs(0.55 - 1) + 2 * abs(0.93 - 0.5)) / 5
    assert summary.ece == pytest.approx(expected)
