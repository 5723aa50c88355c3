"""A binary model's evaluation on several splits from one aggregation: curve, threshold, metrics,
calibration before and after.

`binary_curve`, `binary_metrics` and `calibration_summary` each read the predictions once; the
train step needs all of them on every split, which was five passes per split plus the exact
AUCs. Here one groupBy over (split, curve bucket, calibrated bin, raw bin) gives every split's
curve, its reliability tables before and after calibration, its log loss and Brier scores and
its confusion counts at the threshold (a threshold chosen on the curve is a bucket edge, so the
counts are the curve's at that edge; a fixed one is a grouping key). At most a few thousand
small rows reach the driver. Only the exact AUCs still sort each split (MLlib's metrics).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakeboost.config.training import ThresholdConfig
from lakeboost.metrics.base import EPS, LABEL, EvaluationError
from lakeboost.metrics.binary import (
    BinaryCurve,
    binned_aucs,
    choose_threshold,
    confusion_metrics,
    curve_from_buckets,
    exact_aucs,
    score_bucket,
)
from lakeboost.metrics.calibration import CalibrationSummary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitEvaluation:
    curve: BinaryCurve
    metrics: dict[str, float]  # binary_metrics' keys, plus ece, raw_brier and raw_ece
    calibration: dict[str, CalibrationSummary]  # "raw" and "calibrated"


@dataclass
class _Cell:
    rows: int = 0
    positives: int = 0
    score_sum: float = 0.0
    raw_sum: float = 0.0
    sq_err: float = 0.0
    raw_sq_err: float = 0.0
    loss: float = 0.0

    def add(self, other: _Cell) -> None:
        self.rows += other.rows
        self.positives += other.positives
        self.score_sum += other.score_sum
        self.raw_sum += other.raw_sum
        self.sq_err += other.sq_err
        self.raw_sq_err += other.raw_sq_err
        self.loss += other.loss


def evaluate_binary_splits(scored: DataFrame, splits: list[str], *, split_column: str, threshold: ThresholdConfig,
                           calibration_bins: int, curve_bins: int = 1000, label: str = LABEL,
                           score: str = "score", raw_score: str = "raw_score",
                           ) -> tuple[float, dict[str, SplitEvaluation]]:
    """(threshold, evaluation per split); the threshold is chosen on `splits[0]`'s curve.

    `scored` holds every split's rows with the calibrated `score` and the model's `raw_score`
    (the same column twice without a calibrator). Rows whose label is not 0/1 or whose score is
    null are skipped with a warning, as binary_metrics does.
    """
    for column in (label, score, raw_score, split_column):
        if column not in scored.columns:
            raise EvaluationError(f"predictions lack column {column!r}; found {scored.columns}")
    if calibration_bins < 1 or curve_bins < 1:
        raise EvaluationError(f"bins must be >= 1, got calibration {calibration_bins}, curve {curve_bins}")
    fixed = float(threshold.target) if threshold.strategy == "fixed" else None
    cells = _cells(scored.where(F.col(split_column).isin(splits)), split_column=split_column, label=label,
                   score=score, raw_score=raw_score, calibration_bins=calibration_bins, curve_bins=curve_bins,
                   fixed=fixed)
    curves = {split: curve_from_buckets(
        [(bucket, cell.positives, cell.rows - cell.positives) for bucket, cell in _by(cells, split, "bucket").items()],
        bins=curve_bins) for split in splits}
    chosen = fixed if fixed is not None else choose_threshold(curves[splits[0]], threshold)
    evaluations = {}
    for split in splits:
        valid = scored.where((F.col(split_column) == split) & F.col(label).isin(0, 1) & F.col(score).isNotNull())
        evaluations[split] = _evaluation(cells, split, curves[split], chosen, fixed=fixed is not None,
                                         curve_bins=curve_bins, scored=valid.select(
                                             F.col(label).cast("double").alias(LABEL),
                                             F.col(score).cast("double").alias("score")))
    return chosen, evaluations


def _cells(scored: DataFrame, *, split_column: str, label: str, score: str, raw_score: str, calibration_bins: int,
           curve_bins: int, fixed: float | None) -> dict[tuple, _Cell]:
    """(split, usable, curve bucket, calibrated bin, raw bin, predicted) -> sums: the one job."""
    y, s, raw = F.col(label).cast("double"), F.col(score).cast("double"), F.col(raw_score).cast("double")
    usable = F.col(label).isin(0, 1) & s.isNotNull() & raw.isNotNull()

    def when_usable(column: Column) -> Column:
        return F.when(usable, column)

    p = F.least(F.greatest(s, F.lit(EPS)), F.lit(1.0 - EPS))
    predicted = s >= F.lit(fixed) if fixed is not None else F.lit(None).cast("boolean")
    rows = (
        scored.groupBy(F.col(split_column).alias("split"), F.coalesce(usable, F.lit(False)).alias("usable"),
                       when_usable(score_bucket(score, curve_bins)).alias("bucket"),
                       when_usable(score_bucket(score, calibration_bins)).alias("bin"),
                       when_usable(score_bucket(raw_score, calibration_bins)).alias("raw_bin"),
                       when_usable(predicted).alias("predicted"))
        .agg(F.count(F.lit(1)).alias("rows"), F.sum(when_usable(y)).alias("positives"),
             F.sum(when_usable(s)).alias("score_sum"), F.sum(when_usable(raw)).alias("raw_sum"),
             F.sum(when_usable((s - y) * (s - y))).alias("sq_err"),
             F.sum(when_usable((raw - y) * (raw - y))).alias("raw_sq_err"),
             F.sum(when_usable(-(y * F.log(p) + (1.0 - y) * F.log(1.0 - p)))).alias("loss"))
        .collect()  # per split: at most curve_bins + 2 * calibration_bins rows (monotone calibrators)
    )
    cells: dict[tuple, _Cell] = {}
    skipped: dict[str, int] = defaultdict(int)
    for r in rows:
        if not r["usable"]:
            skipped[r["split"]] += int(r["rows"])
            continue
        cells[(r["split"], int(r["bucket"]), int(r["bin"]), int(r["raw_bin"]), r["predicted"])] = _Cell(
            int(r["rows"]), int(r["positives"]), float(r["score_sum"]), float(r["raw_sum"]), float(r["sq_err"]),
            float(r["raw_sq_err"]), float(r["loss"]))
    for split, count in skipped.items():
        log.warning("%s: skipped %d rows with a null score or a label other than 0/1", split, count)
    return cells


_KEY = {"bucket": 1, "bin": 2, "raw_bin": 3, "predicted": 4}


def _by(cells: dict[tuple, _Cell], split: str, key: str) -> dict:
    """The split's cells summed over every grouping key but `key`."""
    totals: dict = defaultdict(_Cell)
    for cell_key, cell in cells.items():
        if cell_key[0] == split:
            totals[cell_key[_KEY[key]]].add(cell)
    return totals


def _summary(bins: dict[int, _Cell], *, raw: bool) -> CalibrationSummary:
    total = sum(cell.rows for cell in bins.values())
    table = [((cell.raw_sum if raw else cell.score_sum) / cell.rows, cell.positives / cell.rows, cell.rows)
             for _, cell in sorted(bins.items())]
    ece = sum(n / total * abs(mean - rate) for mean, rate, n in table)
    brier = sum(cell.raw_sq_err if raw else cell.sq_err for cell in bins.values()) / total
    return CalibrationSummary(brier, ece, table)


def _evaluation(cells: dict[tuple, _Cell], split: str, curve: BinaryCurve, threshold: float, *, fixed: bool,
                curve_bins: int, scored: DataFrame) -> SplitEvaluation:
    by_bucket = _by(cells, split, "bucket")
    everything = _Cell()
    for cell in by_bucket.values():
        everything.add(cell)
    if everything.rows == 0:
        raise EvaluationError(f"{split}: no row with a 0/1 label and a non-null score: nothing to evaluate")
    if fixed:
        by_predicted = _by(cells, split, "predicted")
        tp, predicted = by_predicted[True].positives, by_predicted[True].rows
    else:  # a threshold from the curve is the lower edge of bucket round(threshold * bins)
        edge = round(threshold * curve_bins)
        above = [cell for bucket, cell in by_bucket.items() if bucket >= edge]
        tp, predicted = sum(c.positives for c in above), sum(c.rows for c in above)
    positives = everything.positives
    metrics = confusion_metrics(rows=everything.rows, tp=tp, fp=predicted - tp, fn=positives - tp,
                                   tn=everything.rows - predicted - (positives - tp), threshold=threshold,
                                   loss=everything.loss, sq_err=everything.sq_err)
    metrics.update(exact_aucs(scored, positives, everything.rows - positives))
    metrics.update(binned_aucs(curve))
    raw, calibrated = _summary(_by(cells, split, "raw_bin"), raw=True), _summary(_by(cells, split, "bin"), raw=False)
    metrics.update({"ece": calibrated.ece, "raw_brier": raw.brier, "raw_ece": raw.ece})
    return SplitEvaluation(curve, metrics, {"raw": raw, "calibrated": calibrated})
