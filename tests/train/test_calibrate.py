"""Calibration against data whose true probabilities are known, and against brute-force oracles."""

from __future__ import annotations

import numpy as np
import pytest
from lakeboost.metrics.base import LABEL
from lakeboost.metrics.calibration import calibration_summary
from lakeboost.train.calibrate import (
    CalibrationError,
    ScoreBucket,
    choose_calibrator,
    fit_calibrator,
    fit_isotonic,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

ROWS = 40_000


@pytest.fixture(scope="module")
def distorted(spark: SparkSession) -> DataFrame:
    """Labels drawn with a known probability p = sigmoid(z); the raw score is a distorted
    sigmoid(0.4 z + 1.8), as a class weight and a too-flat model would make it (mean ~0.6 at a
    base rate of ~0.09). Even ids fit, odd ids are held out."""
    z = F.lit(-3.0) + 1.5 * F.randn(seed=11)
    return (
        spark.range(ROWS).select("id", z.alias("z"))
        .withColumn(LABEL, (F.rand(seed=12) < 1 / (1 + F.exp(-F.col("z")))).cast("int"))
        .withColumn("score", 1 / (1 + F.exp(-(0.4 * F.col("z") + 1.8))))
        .cache()
    )


@pytest.mark.parametrize("method", ["platt", "isotonic"])
def test_calibration_on_known_probabilities_lowers_brier_and_ece_on_held_out_rows(
        distorted: DataFrame, method: str) -> None:
    fit, held_out = distorted.where(F.col("id") % 2 == 0), distorted.where(F.col("id") % 2 == 1)
    calibrator = fit_calibrator(fit, method)
    calibrated = held_out.withColumn("score", calibrator.column(F.col("score")))

    before, after = calibration_summary(held_out), calibration_summary(calibrated)
    assert before.ece > 0.3 and after.ece < 0.02, (before.ece, after.ece)
    assert after.brier < 0.5 * before.brier
    observed, mean_score = calibrated.agg(F.avg(LABEL), F.avg("score")).first()
    assert abs(mean_score - observed) < 0.01  # the stated tolerance: 0.01 at a ~0.09 rate, 20,000 rows
    # The best possible Brier on these rows is that of the true probabilities: close to it.
    truth = held_out.withColumn("score", 1 / (1 + F.exp(-F.col("z"))))
    assert after.brier < calibration_summary(truth).brier * 1.02


def test_platt_recovers_the_inverse_of_the_distortion(distorted: DataFrame) -> None:
    # logit(raw) = 0.4 z + 1.8, so the true probability is sigmoid(2.5 logit(raw) - 4.5).
    calibrator = fit_calibrator(distorted, "platt")
    assert calibrator.params["a"] == pytest.approx(2.5, rel=0.06)
    assert calibrator.params["b"] == pytest.approx(-4.5, rel=0.06)


def _pav_oracle(values: list[float], weights: list[float]) -> list[float]:
    """Brute-force isotonic fit: merge any adjacent violating pair until none is left."""
    blocks = [[v, w, 1] for v, w in zip(values, weights, strict=True)]
    merged = True
    while merged:
        merged = False
        for i in range(len(blocks) - 1):
            if blocks[i][0] > blocks[i + 1][0]:
                (v1, w1, n1), (v2, w2, n2) = blocks[i], blocks[i + 1]
                blocks[i:i + 2] = [[(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, n1 + n2]]
                merged = True
                break
    return [v for v, _, n in blocks for _ in range(n)]


def test_isotonic_fit_matches_a_brute_force_pool_adjacent_violators() -> None:
    rng = np.random.default_rng(5)
    for _ in range(50):
        n = int(rng.integers(1, 40))
        rows = rng.integers(1, 30, size=n)
        positives = [int(rng.integers(0, r + 1)) for r in rows]
        buckets = [ScoreBucket(int(r), p, (i + 0.5) / n, 0.0) for i, (r, p) in enumerate(zip(rows, positives,
                                                                                              strict=True))]
        xs, ys = fit_isotonic(buckets)
        expected = _pav_oracle([p / r for p, r in zip(positives, rows, strict=True)], [float(r) for r in rows])
        # One knot per block, each at its block's rate.
        assert len(xs) == len(ys) and xs == sorted(xs)
        assert ys == sorted(ys) and len(set(ys)) == len(ys)  # strictly increasing across blocks
        assert sorted(set(np.round(expected, 12))) == list(np.round(ys, 12))
        assert sum(y * r for y, r in zip(expected, rows, strict=True)) == pytest.approx(sum(positives))


def test_a_single_class_cannot_be_calibrated(spark: SparkSession) -> None:
    df = spark.createDataFrame([(0, 0.2), (0, 0.4)], f"{LABEL} int, score double")
    with pytest.raises(CalibrationError, match="both classes"):
        fit_calibrator(df, "platt")


def _with_time(df: DataFrame) -> DataFrame:
    return df.withColumn("t", F.timestamp_seconds(F.col("id") * 60))


def test_auto_keeps_a_calibrator_where_held_out_folds_show_it_helps(distorted: DataFrame) -> None:
    choice = choose_calibrator(_with_time(distorted), "auto", order="t")
    assert choice.method in ("platt", "isotonic") and choice.calibrator is not None and not choice.forced
    assert choice.folds == 5 and set(choice.losses) == {"none", "platt", "isotonic"}
    assert choice.losses[choice.method] < 0.8 * choice.losses["none"], choice.describe()
    # The bucketed held-out loss of the raw scores against the rows' own log loss (its oracle).
    p = F.least(F.greatest(F.col("score"), F.lit(1e-15)), F.lit(1 - 1e-15))
    row_loss = distorted.agg(F.avg(-(F.col(LABEL) * F.log(p) + (1 - F.col(LABEL)) * F.log(1 - p)))).first()[0]
    assert choice.losses["none"] == pytest.approx(row_loss, rel=0.01)


def test_auto_keeps_the_raw_scores_when_they_are_already_probabilities(distorted: DataFrame) -> None:
    # The true probabilities as scores: no calibrator can beat them beyond noise.
    honest = distorted.withColumn("score", 1 / (1 + F.exp(-F.col("z"))))
    for metric in ("log_loss", "brier"):
        choice = choose_calibrator(_with_time(honest), "auto", order="t", metric=metric)
        assert choice.method == "none" and choice.calibrator is None, choice.describe()
    # Named, a method is kept whatever the figures say, and the figures are still there.
    forced = choose_calibrator(honest, "isotonic", key=("id",))
    assert forced.method == "isotonic" and forced.forced and forced.calibrator is not None
    assert set(forced.figures()) == {f"calibration_heldout_log_loss_{m}" for m in ("none", "platt", "isotonic")}


def test_auto_refuses_a_calibrator_that_does_not_carry_over_in_time(spark: SparkSession) -> None:
    # The raw scores are probabilities, then too high by the same margin in the late folds as
    # they are too low in the early ones: a calibrator fitted on the other periods fixes none.
    z = F.lit(-2.0) + 1.5 * F.randn(seed=21)
    drift = F.when(F.col("id") < ROWS * 2 // 5, -1.0).when(F.col("id") >= ROWS * 3 // 5, 1.0).otherwise(0.0)
    rows = (spark.range(ROWS).select("id", z.alias("z"), drift.alias("d"))
            .withColumn(LABEL, (F.rand(seed=22) < 1 / (1 + F.exp(-F.col("z")))).cast("int"))
            .withColumn("score", 1 / (1 + F.exp(-(F.col("z") + F.col("d"))))))
    in_time = choose_calibrator(_with_time(rows), "auto", order="t")
    assert in_time.method == "none", in_time.describe()
