"""How well scores read as probabilities: the reliability table, expected calibration error, Brier."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeboost.metrics.base import LABEL, EvaluationError
from lakeboost.metrics.binary import score_bucket


@dataclass(frozen=True)
class CalibrationSummary:
    """Brier score and expected calibration error of one score column, and the reliability bins."""

    brier: float
    ece: float
    bins: list[tuple[float, float, int]]  # (mean score, observed rate, rows) per non-empty bin


def calibration_summary(predictions: DataFrame, *, bins: int = 10, label: str = LABEL,
                        score: str = "score") -> CalibrationSummary:
    """One groupBy over `bins` equal-width score bins: the reliability table, ECE and Brier.

    ECE = sum over bins of rows_b / rows * |mean score_b - observed rate_b|.
    """
    if bins < 1:
        raise EvaluationError(f"bins must be >= 1, got {bins}")
    y, s = F.col(label).cast("double"), F.col(score).cast("double")
    rows = (
        predictions.where(F.col(label).isin(0, 1) & s.isNotNull())
        .groupBy(score_bucket(score, bins).alias("bucket"))
        .agg(F.avg(s).alias("mean_score"), F.avg(y).alias("rate"), F.count(F.lit(1)).alias("n"),
             F.sum((s - y) * (s - y)).alias("sq_err"))
        .orderBy("bucket")
        .collect()  # at most `bins` rows
    )
    total = sum(int(r["n"]) for r in rows)
    if total == 0:
        raise EvaluationError(f"no row with {label} in (0, 1) and a non-null {score}")
    table = [(float(r["mean_score"]), float(r["rate"]), int(r["n"])) for r in rows]
    ece = sum(n / total * abs(m - rate) for m, rate, n in table)
    return CalibrationSummary(sum(float(r["sq_err"]) for r in rows) / total, ece, table)
