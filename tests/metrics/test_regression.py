"""Regression metrics agree with scikit-learn."""

from __future__ import annotations

import math

import pytest
from lakeboost.metrics.regression import regression_metrics
from pyspark.sql import SparkSession
from sklearn import metrics as skm


def test_regression_metrics_match_sklearn_and_ignore_null_rows(spark: SparkSession) -> None:
    pairs = [(3.0, 2.5), (-0.5, 0.0), (2.0, 2.0), (7.0, 8.0), (1.5, 1.0), (4.0, 3.2)]
    df = spark.createDataFrame(pairs + [(None, 1.0), (2.0, None)], "_label double, prediction double")
    m = regression_metrics(df)
    y, yhat = zip(*pairs, strict=True)
    assert m["rows"] == len(pairs)
    assert m["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y, yhat)), abs=1e-9)
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, yhat), abs=1e-9)
    assert m["r2"] == pytest.approx(skm.r2_score(y, yhat), abs=1e-9)
