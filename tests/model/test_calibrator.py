"""The stored calibrator as a Spark expression: isotonic interpolation, Platt, nulls kept null."""

from __future__ import annotations

import numpy as np
import pytest
from lakeboost.model.calibrator import Calibrator
from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def test_isotonic_column_interpolates_like_numpy(spark: SparkSession) -> None:
    calibrator = Calibrator("isotonic", {"x": [0.1, 0.3, 0.6, 0.9], "y": [0.0, 0.05, 0.2, 0.7]})
    points = [None, 0.0, 0.1, 0.2, 0.3, 0.45, 0.6, 0.75, 0.9, 0.95, 1.0]
    df = spark.createDataFrame([(p,) for p in points], "raw double")
    got = [r[0] for r in df.select(calibrator.column(F.col("raw"))).collect()]
    expected = [None] + list(np.interp(points[1:], calibrator.params["x"], calibrator.params["y"]))
    assert got[0] is None
    assert got[1:] == pytest.approx(expected[1:], abs=1e-12)


def test_platt_column_keeps_a_null_raw_score_null(spark: SparkSession) -> None:
    calibrator = Calibrator("platt", {"a": 1.3, "b": -1.1})
    df = spark.createDataFrame([(None,), (0.0,), (0.5,)], "raw double")
    got = [r[0] for r in df.select(calibrator.column(F.col("raw"))).collect()]
    assert got[0] is None and 0 < got[1] < 1e-15
    assert got[2] == pytest.approx(1 / (1 + np.exp(1.1)), abs=1e-12)
