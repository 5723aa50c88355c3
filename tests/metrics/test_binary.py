"""Distributed binary metrics agree with scikit-learn; thresholds follow their strategy."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from lakeboost.config.training import ThresholdConfig
from lakeboost.metrics.base import EvaluationError
from lakeboost.metrics.binary import BinaryCurve, binary_curve, binary_metrics, choose_threshold
from pyspark.sql import DataFrame, SparkSession
from sklearn import metrics as skm

BINARY_SCHEMA = "_label int, score double"




@pytest.fixture(scope="module")
def scored_local(scored: DataFrame) -> tuple[np.ndarray, np.ndarray]:
    # Tests may collect their small data to compute the scikit-learn reference.
    rows = scored.collect()
    return np.array([r["_label"] for r in rows]), np.array([r["score"] for r in rows])


@pytest.fixture(scope="module")
def hand_made(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame([(1, 0.9), (0, 0.8), (1, 0.3), (0, 0.1)], BINARY_SCHEMA)


def test_binary_metrics_agree_with_sklearn(scored: DataFrame, scored_local: tuple[np.ndarray, np.ndarray]) -> None:
    y, s = scored_local
    m = binary_metrics(scored, threshold=0.5, curve=binary_curve(scored, bins=1000))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s), abs=1e-9)
    # Spark's area under the PR curve is a trapezoid, not average precision: close, not equal.
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, s), abs=0.02)
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, s), abs=1e-6)
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, s), abs=1e-9)
    tn, fp, fn, tp = skm.confusion_matrix(y, s >= 0.5).ravel()
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (tp, fp, fn, tn)
    assert m["f1"] == pytest.approx(skm.f1_score(y, s >= 0.5))
    assert (m["rows"], m["positives"]) == (len(y), y.sum())
    assert 0.6 < m["roc_auc"] < 0.95, "the seeded signal is learnable but imperfect"
    # The binned areas (from the curve) are a cheap cross-check of the exact ones.
    assert m["roc_auc_binned"] == pytest.approx(m["roc_auc"], abs=0.005)
    assert m["pr_auc_binned"] == pytest.approx(m["pr_auc"], abs=0.01)


def test_confusion_counts_are_exact_and_invalid_rows_are_skipped(
    spark: SparkSession, hand_made: DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    edge = spark.createDataFrame([(1, None), (2, 0.7)], BINARY_SCHEMA)  # null score, label not 0/1
    with caplog.at_level(logging.WARNING, logger="lakeboost.metrics.binary"):
        m = binary_metrics(hand_made.unionByName(edge), threshold=0.5)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (1, 1, 1, 1)
    assert (m["precision"], m["recall"], m["f1"], m["accuracy"]) == (0.5, 0.5, 0.5, 0.5)
    assert (m["rows"], m["positives"], m["base_rate"]) == (4, 2, 0.5)
    assert m["roc_auc"] == pytest.approx(0.75)
    assert "skipped 2 rows" in caplog.text


def test_score_equal_to_threshold_is_predicted_positive(spark: SparkSession) -> None:
    m = binary_metrics(spark.createDataFrame([(1, 0.5), (0, 0.2)], BINARY_SCHEMA), threshold=0.5)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (1, 0, 0, 1)


def test_binary_curve_counts_from_the_top_on_hand_made_scores(spark: SparkSession, hand_made: DataFrame) -> None:
    with_one = hand_made.unionByName(spark.createDataFrame([(1, 1.0)], BINARY_SCHEMA))  # clipped to the top bin
    curve = binary_curve(with_one, bins=10)
    assert curve == BinaryCurve(thresholds=[0.9, 0.8, 0.3, 0.1], tp=[2, 2, 3, 3], fp=[0, 1, 1, 2],
                                fn=[1, 1, 0, 0], tn=[2, 1, 1, 0])


def test_binary_curve_matches_direct_counts_at_every_threshold(
    scored: DataFrame, scored_local: tuple[np.ndarray, np.ndarray]
) -> None:
    y, s = scored_local
    curve = binary_curve(scored, bins=50)
    assert curve.thresholds == sorted(curve.thresholds, reverse=True)
    assert 1 < len(curve.thresholds) <= 50
    for t, tp, fp, fn, tn in zip(curve.thresholds, curve.tp, curve.fp, curve.fn, curve.tn, strict=True):
        predicted = s >= t  # exactly the rule binary_metrics applies, even for scores on a bucket edge
        assert (tp, fp, fn, tn) == (np.sum(predicted & (y == 1)), np.sum(predicted & (y == 0)),
                                    np.sum(~predicted & (y == 1)), np.sum(~predicted & (y == 0)))


def test_binary_metrics_without_scored_rows_raises(spark: SparkSession) -> None:
    with pytest.raises(EvaluationError, match="nothing to evaluate"):
        binary_metrics(spark.createDataFrame([(3, 0.2)], BINARY_SCHEMA), threshold=0.5)


def test_missing_column_names_what_was_found(hand_made: DataFrame) -> None:
    with pytest.raises(EvaluationError, match=r"lack column\(s\) \['prob'\]; found \['_label', 'score'\]"):
        binary_curve(hand_made, score="prob")


# P = 4, N = 6. precision [1, 1, .75, .5, .4], recall [.25, .5, .75, 1, 1], F1 peaks (.75) at 0.5.
CURVE = BinaryCurve(thresholds=[0.9, 0.7, 0.5, 0.3, 0.1], tp=[1, 2, 3, 4, 4], fp=[0, 0, 1, 4, 6],
                    fn=[3, 2, 1, 0, 0], tn=[6, 6, 5, 2, 0])


def test_max_f1_picks_the_best_threshold() -> None:
    assert choose_threshold(CURVE, ThresholdConfig()) == 0.5


def test_max_f1_tie_goes_to_the_higher_threshold() -> None:
    tied = BinaryCurve(thresholds=[0.8, 0.4], tp=[1, 2], fp=[0, 2], fn=[1, 0], tn=[2, 0])  # F1 0.5 at both
    assert choose_threshold(tied, ThresholdConfig(strategy="max_f1")) == 0.8


@pytest.mark.parametrize(("target", "expected"), [(0.7, 0.5), (0.95, 0.7), (0.4, 0.3)])
def test_target_precision_maximises_recall_at_that_precision(target: float, expected: float) -> None:
    # target 0.4: 0.3 and 0.1 both reach recall 1 (precision .5 and .4); the tie goes to the higher.
    chosen = choose_threshold(CURVE, ThresholdConfig(strategy="target_precision", target=target))
    assert chosen == expected
    i = CURVE.thresholds.index(chosen)
    assert CURVE.tp[i] / (CURVE.tp[i] + CURVE.fp[i]) >= target


@pytest.mark.parametrize(("target", "expected"), [(0.6, 0.5), (0.9, 0.3), (0.2, 0.9)])
def test_target_recall_picks_the_highest_threshold_reaching_it(target: float, expected: float) -> None:
    assert choose_threshold(CURVE, ThresholdConfig(strategy="target_recall", target=target)) == expected


def test_unreachable_precision_falls_back_to_max_f1_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    noisy = BinaryCurve(thresholds=[0.9, 0.5], tp=[1, 2], fp=[1, 3], fn=[1, 0], tn=[2, 0])  # precision <= 0.5
    with caplog.at_level(logging.WARNING, logger="lakeboost.metrics.binary"):
        chosen = choose_threshold(noisy, ThresholdConfig(strategy="target_precision", target=0.8))
    assert chosen == 0.5  # F1 .5 at 0.9, .571 at 0.5
    assert "cannot reach 0.8000" in caplog.text and "falling back to max_f1" in caplog.text


def test_fixed_threshold_and_empty_curve() -> None:
    empty = BinaryCurve(thresholds=[], tp=[], fp=[], fn=[], tn=[])
    assert choose_threshold(empty, ThresholdConfig(strategy="fixed", target=0.3)) == 0.3
    with pytest.raises(EvaluationError, match="curve is empty"):
        choose_threshold(empty, ThresholdConfig())
