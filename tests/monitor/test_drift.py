"""Drift metrics against hand-computed values on small known distributions."""

from __future__ import annotations

import math

import pytest
from lakeboost.monitor.drift import categorical_drift, categorical_drift_by, numeric_drift, numeric_drift_by, psi
from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def test_psi_matches_the_formula() -> None:
    reference, current = [0.5, 0.5], [0.25, 0.75]
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi(reference, current) == pytest.approx(expected)
    assert psi(reference, reference) == 0.0


def test_identical_numeric_data_shows_no_drift_and_a_shift_does(spark: SparkSession) -> None:
    reference = spark.range(1000).select(F.col("id").cast("double").alias("x"))
    shifted = spark.range(1000).select((F.col("id") + 500).cast("double").alias("x"))

    same = numeric_drift(reference, reference, ["x"])[0]
    moved = numeric_drift(reference, shifted, ["x"])[0]

    assert same.psi == pytest.approx(0.0, abs=1e-9) and same.ks == pytest.approx(0.0, abs=1e-9)
    # Half of the shifted values lie above every reference value: KS = 0.5 exactly.
    assert moved.ks == pytest.approx(0.5, abs=0.011)
    # Deciles: the shifted sample fills the top 5 reference deciles' range differently, PSI >> 0.2.
    assert moved.psi > 1.0


def test_categorical_chi_square_and_psi_by_hand(spark: SparkSession) -> None:
    reference = spark.createDataFrame([("a",)] * 50 + [("b",)] * 50, "c string")
    current = spark.createDataFrame([("a",)] * 30 + [("b",)] * 70, "c string")

    result = categorical_drift(reference, current, ["c"])[0]

    # expected 50/50 of 100: chi2 = (30-50)^2/50 + (70-50)^2/50 = 16
    assert result.chi2 == pytest.approx(16.0)
    assert result.p_value == pytest.approx(6.334e-05, rel=1e-3)
    assert result.psi == pytest.approx(psi([0.5, 0.5], [0.3, 0.7]))
    assert categorical_drift(reference, reference, ["c"])[0].chi2 == pytest.approx(0.0)


def test_drift_per_window_equals_drift_of_each_window_alone(spark: SparkSession) -> None:
    reference = spark.range(1000).select(F.col("id").cast("double").alias("x"),
                                         F.when(F.col("id") % 2 == 0, "a").otherwise("b").alias("c"))
    current = (
        spark.range(1000).select(F.lit("w1").alias("w"), F.col("id").cast("double").alias("x"),
                                 F.when(F.col("id") % 2 == 0, "a").otherwise("b").alias("c"))
        .unionByName(spark.range(1000).select(F.lit("w2").alias("w"), (F.col("id") + 500).cast("double").alias("x"),
                                              F.when(F.col("id") % 10 < 3, "a").otherwise("b").alias("c")))
    )

    numeric = dict(numeric_drift_by(reference, current, ["x"], by="w"))
    categorical = dict(categorical_drift_by(reference, current, ["c"], by="w"))

    for window in ("w1", "w2"):
        alone = current.filter(F.col("w") == window)
        assert numeric[window] == numeric_drift(reference, alone, ["x"])[0]
        assert categorical[window] == categorical_drift(reference, alone, ["c"])[0]
    assert numeric["w1"].psi == pytest.approx(0.0, abs=1e-9) and numeric["w2"].psi > 1.0
    assert categorical["w1"].chi2 == pytest.approx(0.0)
    # 300 a / 700 b against 50/50 of 1000: chi2 = 2 * 200^2 / 500 = 160
    assert categorical["w2"].chi2 == pytest.approx(160.0)
