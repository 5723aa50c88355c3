"""Drift metrics against hand-computed values on small known distributions."""

from __future__ import annotations

import math

import pytest
from lakeboost.monitor.drift import (
    Reference,
    categorical_drift,
    categorical_drift_by,
    numeric_drift,
    numeric_drift_by,
    psi,
)
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

    # A Reference bins the reference once and gives the same results for every comparison.
    binned = Reference(reference)
    assert dict(numeric_drift_by(binned, current, ["x"], by="w")) == numeric
    assert dict(categorical_drift_by(binned, current, ["c"], by="w")) == categorical
    assert dict(numeric_drift_by(binned, current, ["x"], by="w")) == numeric  # cached edges and counts
    for window in ("w1", "w2"):
        alone = current.filter(F.col("w") == window)
        assert numeric[window] == numeric_drift(reference, alone, ["x"])[0]
        assert categorical[window] == categorical_drift(reference, alone, ["c"])[0]
    assert numeric["w1"].psi == pytest.approx(0.0, abs=1e-9) and numeric["w2"].psi > 1.0
    assert categorical["w1"].chi2 == pytest.approx(0.0)
    # 300 a / 700 b against 50/50 of 1000: chi2 = 2 * 200^2 / 500 = 160
    assert categorical["w2"].chi2 == pytest.approx(160.0)


def test_null_is_a_bin_of_its_own_and_ks_needs_enough_values(spark: SparkSession) -> None:
    # A sparse feature: 5% of the rows have a value, in both samples, drawn from one uniform
    # distribution; the current window has 20 of them.
    reference = spark.range(4000).select(F.when(F.col("id") % 20 == 0, F.col("id").cast("double")).alias("x"))
    current = spark.range(400).select(F.when(F.col("id") % 20 == 0, F.rand(seed=7) * 4000).alias("x"))
    missing = spark.range(400).select(F.when(F.col("id") % 2 == 0, F.col("id").cast("double") * 10).alias("x"))

    sparse = numeric_drift(reference, current, ["x"], min_values=50)[0]
    feed_gone = numeric_drift(reference, missing, ["x"], min_values=50)[0]

    # 20 values in the current window: their bins weigh 5% of the distribution, as in the
    # reference, so PSI stays far below an alert; KS is not computed on 20 values.
    assert sparse.null_shares == pytest.approx((0.95, 0.95))
    assert sparse.psi < 0.2 and sparse.ks is None
    # Computed on the values alone (the old way) the same window reads as a large drift.
    values_only = numeric_drift(reference.dropna(), current.dropna(), ["x"])[0]
    assert values_only.psi > 0.5
    # Half the rows missing where the reference has 95%: the NULL bin alone moves PSI.
    expected = psi([0.95, 0.05], [0.5, 0.5])
    assert feed_gone.null_shares == pytest.approx((0.95, 0.5))
    assert feed_gone.psi >= expected - 1e-9 and feed_gone.ks is not None
    assert sparse.bins[-1] == "NULL" and len(sparse.bins) == len(sparse.reference_shares)


def test_categories_never_seen_in_the_reference_are_counted(spark: SparkSession) -> None:
    reference = spark.createDataFrame([("a",)] * 60 + [("b",)] * 40, "c string")
    current = spark.createDataFrame([("a",)] * 60 + [("z",)] * 30 + [(None,)] * 10, "c string")

    result = categorical_drift(reference, current, ["c"])[0]

    assert result.unseen_share == pytest.approx(0.4)  # z and NULL
    assert result.bins == ("a", "b", "z", "NULL")
    assert result.current_shares == pytest.approx((0.6, 0.0, 0.3, 0.1))


def test_any_column_name_is_compared_as_a_plain_one(spark: SparkSession) -> None:
    # The aggregations are spelt as SQL text: names with a quote, a space or a backslash must
    # bin exactly like a plain name.
    odd = ["it's", "two words", "back\\slash"]
    reference = spark.range(500).select(*[(F.col("id") % (7 + i)).cast("double").alias(n) for i, n in enumerate(odd)],
                                        *[(F.col("id") % (7 + i)).cast("double").alias(f"plain{i}")
                                          for i in range(len(odd))])
    current = spark.range(300).select(*[(F.col("id") % (5 + i)).cast("double").alias(n) for i, n in enumerate(odd)],
                                      *[(F.col("id") % (5 + i)).cast("double").alias(f"plain{i}")
                                        for i in range(len(odd))])

    numeric = numeric_drift(reference, current, [*odd, *[f"plain{i}" for i in range(len(odd))]])
    categorical = categorical_drift(reference, current, [*odd, *[f"plain{i}" for i in range(len(odd))]])

    for results in (numeric, categorical):
        named, plain = results[:len(odd)], results[len(odd):]
        assert [r.feature for r in named] == odd
        assert all(r.psi > 0 for r in named)
        for a, b in zip(named, plain, strict=True):
            assert (a.psi, a.ks, a.chi2, a.bins, a.current_shares) == (b.psi, b.ks, b.chi2, b.bins, b.current_shares)


def test_features_and_score_against_their_references_in_one_job_as_each_alone(spark: SparkSession) -> None:
    from lakeboost.monitor.drift import Comparison, drift_by

    from tests.helpers import spark_jobs

    def frame(shift: float, rows: int):
        return spark.range(rows).select(
            (F.col("id") % 3).cast("string").alias("w"),
            ((F.col("id") * 7919 % 1000) + shift).cast("double").alias("x"),
            F.when(F.col("id") % 11 == 0, None).otherwise((F.col("id") % 5).cast("string")).alias("c"),
            (((F.col("id") * 104729) % 997) / 997 + shift / 1000).alias("score"))

    reference, current = frame(0, 3000), frame(300, 900)
    features, scores = Reference(reference), Reference(reference.select("score"))
    features.prepare(["x"], ["c"]), scores.prepare(["score"], [])
    (drifts, score_drifts), jobs = spark_jobs(spark, lambda: drift_by(
        current, [Comparison(features, ["x"], ["c"], 100), Comparison(scores, ["score"])], by="w"))
    assert jobs <= 2  # one aggregation over the current side (and its adaptive stage's job)
    assert drifts == [*numeric_drift_by(reference, current, ["x"], by="w", min_values=100),
                      *categorical_drift_by(reference, current, ["c"], by="w")]
    assert score_drifts == numeric_drift_by(reference.select("score"), current, ["score"], by="w")
    assert {g for g, _ in drifts} == {"0", "1", "2"} and all(r.psi > 0.1 for _, r in drifts if r.feature == "x")


def test_deciles_counted_from_the_percentile_bins_equal_binning_the_rows_again(spark: SparkSession) -> None:
    from lakeboost.monitor.drift import _bin_counts

    df = spark.range(2000).select((F.col("id") % 7).cast("string").alias("g"), F.when(F.col("id") % 13 == 0, None)
                                  .otherwise(((F.col("id") * 7919) % 1000) / 10).alias("x"))
    fine = [float(v) for v in range(1, 100)] + [float("inf")]
    coarse = [10.0, 20.0, 55.0, 99.0, float("inf")]  # edges of the fine binning, some values on them
    together = _bin_counts(df, {"ks::x": ("x", fine), "psi::x": ("x", coarse)}, "g")
    alone = _bin_counts(df, {"psi::x": ("x", coarse)}, "g")
    assert {g: c["psi::x"] for g, c in together.items()} == {g: c["psi::x"] for g, c in alone.items()}
    assert sum(alone["0"]["psi::x"].values()) == df.where("g = '0'").count() and -1 in alone["0"]["psi::x"]
