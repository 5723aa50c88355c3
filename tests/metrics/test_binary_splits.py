"""The one-aggregation binary evaluation gives what the separate passes give, split by split."""

from __future__ import annotations

import logging

import pytest
from lakeboost.config.training import ThresholdConfig
from lakeboost.metrics.base import EvaluationError
from lakeboost.metrics.binary import binary_curve, binary_metrics, choose_threshold
from lakeboost.metrics.binary_splits import evaluate_binary_splits
from lakeboost.metrics.calibration import calibration_summary
from lakeboost.train.calibrate import Calibrator
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from tests.metrics.conftest import uniform


@pytest.fixture(scope="module")
def two_splits(spark: SparkSession) -> DataFrame:
    """6000 seeded rows in valid/test/train, ~10% positives, raw scores with ties (3 decimals),
    Platt-calibrated scores, and a few rows the evaluation must skip (null score, label 2)."""
    platt = Calibrator("platt", {"a": 1.3, "b": -1.1})
    rows = (
        spark.range(6000)
        .select(F.col("id"), F.when(F.col("id") % 3 == 0, "valid").when(F.col("id") % 3 == 1, "test")
                .otherwise("train").alias("split"),
                (uniform(1) < 0.1).cast("int").alias("_label"))
        .withColumn("raw_score", F.round(0.35 * F.col("_label") + 0.65 * uniform(2), 3))
        .withColumn("_label", F.when(F.col("id") == 7, 2).otherwise(F.col("_label")))
        .withColumn("raw_score", F.when(F.col("id") == 9, None).otherwise(F.col("raw_score")))
    )
    return rows.withColumn("score", platt.column(F.col("raw_score"))).cache()


def _separately(scored: DataFrame, split: str, threshold: float, bins: int) -> dict:
    """What the train step computed before: one pass per metric family."""
    rows = scored.where(F.col("split") == split)
    curve = binary_curve(rows)
    metrics = binary_metrics(rows, threshold=threshold, curve=curve)
    return {"curve": curve, "metrics": metrics,
            "raw": calibration_summary(rows, bins=bins, score="raw_score"),
            "calibrated": calibration_summary(rows, bins=bins)}


@pytest.mark.parametrize("strategy,target", [("max_f1", 0.5), ("target_recall", 0.8), ("fixed", 0.137)])
def test_one_aggregation_matches_the_separate_passes_on_every_split(
        two_splits: DataFrame, strategy: str, target: float, caplog: pytest.LogCaptureFixture) -> None:
    config = ThresholdConfig(strategy=strategy, target=target)
    with caplog.at_level(logging.WARNING):
        threshold, evaluations = evaluate_binary_splits(two_splits, ["valid", "test"], split_column="split",
                                                        threshold=config, calibration_bins=10)
    assert set(evaluations) == {"valid", "test"}  # train rows are not evaluated
    assert threshold == choose_threshold(binary_curve(two_splits.where(F.col("split") == "valid")), config)
    for split, evaluation in evaluations.items():
        expected = _separately(two_splits, split, threshold, bins=10)
        assert evaluation.curve == expected["curve"]
        metrics = dict(evaluation.metrics)
        assert {k: metrics.pop(k) for k in ("ece", "raw_brier", "raw_ece")} == pytest.approx(
            {"ece": expected["calibrated"].ece, "raw_brier": expected["raw"].brier, "raw_ece": expected["raw"].ece})
        assert metrics == pytest.approx(expected["metrics"], rel=1e-12)
        for kind in ("raw", "calibrated"):
            got, want = evaluation.calibration[kind], expected[kind]
            assert (got.brier, got.ece) == pytest.approx((want.brier, want.ece), rel=1e-12)
            assert [n for *_, n in got.bins] == [n for *_, n in want.bins]
            assert [v for b in got.bins for v in b[:2]] == pytest.approx([v for b in want.bins for v in b[:2]],
                                                                          rel=1e-12)
    # The skipped rows are named per split: id 7 (label 2) is in test, id 9 (no score) in valid.
    assert {m for m in caplog.messages if "skipped" in m} >= {
        "valid: skipped 1 rows with a null score or a label other than 0/1",
        "test: skipped 1 rows with a null score or a label other than 0/1"}


def test_a_split_without_evaluable_rows_is_named(spark: SparkSession) -> None:
    rows = spark.createDataFrame([("valid", 1, 0.9, 0.9), ("valid", 0, 0.2, 0.2), ("test", 2, 0.5, 0.5)],
                                 "split string, _label int, raw_score double, score double")
    with pytest.raises(EvaluationError, match="test: no row with a 0/1 label"):
        evaluate_binary_splits(rows, ["valid", "test"], split_column="split",
                               threshold=ThresholdConfig(strategy="max_f1"), calibration_bins=10)
