"""Probability calibration of binary scores, fitted on the validation split.

Class weights and negative down-sampling move a model's raw scores away from probabilities
(a balanced weight puts the demo's scores around 0.5 at a base rate of 2%). A calibrator maps
raw scores to probabilities and is stored with the model (lakeboost.model.calibrator, which
applies it), so batch and stream scoring, the threshold, promotion and the monitor all read
probabilities.

- platt: p = sigmoid(a * logit(raw) + b), a two-parameter logistic fit. It keeps the ranking
  (AUCs unchanged) and exactly undoes a class weight, which shifts log-odds by a constant; two
  parameters do not overfit a validation split with few positives.
- isotonic: a monotone step function (pool-adjacent-violators), interpolated linearly between
  its blocks; more flexible, needs more positives, and ties scores within a flat block.

Both are fitted from one groupBy over 1,000 equal-width raw-score buckets: only those counts
reach the driver, never the predictions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeboost.metrics.base import EPS, LABEL
from lakeboost.metrics.binary import score_bucket
from lakeboost.model.calibrator import CalibrationError, Calibrator

BUCKETS = 1000


@dataclass(frozen=True)
class ScoreBucket:
    rows: int
    positives: int
    mean_score: float
    mean_logit: float


def score_buckets(predictions: DataFrame, *, label: str = LABEL, score: str = "score") -> list[ScoreBucket]:
    """Counts, positives, mean score and mean logit per non-empty raw-score bucket, ascending."""
    s = F.least(F.greatest(F.col(score).cast("double"), F.lit(EPS)), F.lit(1.0 - EPS))
    rows = (
        predictions.where(F.col(label).isin(0, 1) & F.col(score).isNotNull())
        .groupBy(score_bucket(score, BUCKETS).alias("bucket"))
        .agg(F.count(F.lit(1)).alias("n"), F.sum(F.col(label).cast("int")).alias("pos"),
             F.avg(F.col(score).cast("double")).alias("mean_score"), F.avg(F.log(s / (1.0 - s))).alias("mean_logit"))
        .collect()  # at most BUCKETS rows, sorted here (orderBy would add a sampling job)
    )
    return [ScoreBucket(int(r["n"]), int(r["pos"]), float(r["mean_score"]), float(r["mean_logit"]))
            for r in sorted(rows, key=lambda r: r["bucket"])]


def fit_calibrator(predictions: DataFrame, method: str, *, label: str = LABEL, score: str = "score") -> Calibrator:
    """Fit `method` on the labelled rows of `predictions` (the validation split's raw scores)."""
    buckets = score_buckets(predictions, label=label, score=score)
    positives, rows = sum(b.positives for b in buckets), sum(b.rows for b in buckets)
    if positives == 0 or positives == rows:
        raise CalibrationError(f"cannot calibrate on {rows} rows with {positives} positives: both classes are "
                               "needed in the validation split (use more data, or training.calibration.method: none)")
    if method == "platt":
        a, b = fit_platt(buckets)
        return Calibrator("platt", {"a": a, "b": b})
    if method == "isotonic":
        xs, ys = fit_isotonic(buckets)
        return Calibrator("isotonic", {"x": xs, "y": ys})
    raise CalibrationError(f"unknown calibration method {method!r}; use platt, isotonic or none")


def fit_platt(buckets: list[ScoreBucket], *, iterations: int = 100) -> tuple[float, float]:
    """(a, b) minimising the log loss of sigmoid(a * logit + b), by Newton's method with line search.

    Platt's smoothed targets ((N+ + 1) / (N+ + 2) for positives, 1 / (N- + 2) for negatives) keep
    the fit finite when the scores separate the classes, as in Platt (1999) and scikit-learn.
    """
    n_pos = sum(b.positives for b in buckets)
    n_neg = sum(b.rows - b.positives for b in buckets)
    hi, lo = (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0)
    # Each bucket as (logit, weight, target): its positives and its negatives, at the mean logit.
    points = [(b.mean_logit, float(b.positives), hi) for b in buckets if b.positives] + \
             [(b.mean_logit, float(b.rows - b.positives), lo) for b in buckets if b.rows > b.positives]

    def loss(a: float, c: float) -> float:
        total = 0.0
        for z, w, t in points:
            u = a * z + c
            # log(1 + e^u) - t * u, stable for large |u|
            total += w * ((u if u > 0 else 0.0) + math.log1p(math.exp(-abs(u))) - t * u)
        return total

    a, c = 1.0, 0.0
    current = loss(a, c)
    for _ in range(iterations):
        ga = gc = haa = hac = hcc = 0.0
        for z, w, t in points:
            p = 1.0 / (1.0 + math.exp(-(a * z + c)))
            r, h = w * (p - t), w * max(p * (1.0 - p), 1e-12)
            ga, gc = ga + r * z, gc + r
            haa, hac, hcc = haa + h * z * z, hac + h * z, hcc + h
        det = haa * hcc - hac * hac
        if abs(det) < 1e-18:
            break
        da, dc = (hcc * ga - hac * gc) / det, (haa * gc - hac * ga) / det
        step = 1.0
        while step > 1e-8:
            trial = loss(a - step * da, c - step * dc)
            if trial <= current:
                break
            step /= 2
        a, c = a - step * da, c - step * dc
        improvement, current = current - trial, trial
        if abs(da * step) + abs(dc * step) < 1e-10 or improvement < 1e-12 * max(abs(current), 1.0):
            break
    return a, c


def fit_isotonic(buckets: list[ScoreBucket]) -> tuple[list[float], list[float]]:
    """Pool-adjacent-violators over the buckets (ascending score, weighted by rows).

    Returns the knots: each block's weighted mean score and its positive rate, increasing.
    """
    blocks: list[list[float]] = []  # [rows, positives, score sum]
    for b in buckets:
        blocks.append([float(b.rows), float(b.positives), b.mean_score * b.rows])
        # Merge backwards while the previous block's rate is not below this one's.
        while len(blocks) > 1 and blocks[-2][1] * blocks[-1][0] >= blocks[-1][1] * blocks[-2][0]:
            rows, pos, total = blocks.pop()
            blocks[-1][0] += rows
            blocks[-1][1] += pos
            blocks[-1][2] += total
    return [total / rows for rows, _, total in blocks], [pos / rows for rows, pos, _ in blocks]
