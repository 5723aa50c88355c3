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

A calibrator must earn its place (`training.calibration.method: auto`, the default): the
validation rows are cut into folds (contiguous blocks of event time where the rows have one, so
a calibrator is judged on a period it was not fitted on, as the test split and the live data
will be), each candidate (none, platt, isotonic) is fitted on all folds but one and scored on
that one by log loss (or Brier), and a calibrator is kept only when its held-out loss beats the
raw scores' by more than two standard errors of the per-fold differences; otherwise `none`
wins. A calibrator fitted on the same rows it is judged on always looks better: that is how
Platt fitted on validation made a real dataset's test ECE worse (0.030 -> 0.090). The folds
come from the same single groupBy (fold x bucket), and the winner is refitted on every fold.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeboost.metrics.base import EPS, LABEL
from lakeboost.metrics.binary import score_bucket
from lakeboost.model.calibrator import CalibrationError, Calibrator

BUCKETS = 1000
CANDIDATES = ("platt", "isotonic")
# A calibrator is chosen only when its held-out loss beats the raw scores' by more than this many
# standard errors of the per-fold differences (with 5 folds, a useless calibrator passes ~6% of
# the time instead of the ~50% a bare "lower is better" would give it).
STANDARD_ERRORS = 2.0


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
    return fit_on_buckets(score_buckets(predictions, label=label, score=score), method)


def fit_on_buckets(buckets: list[ScoreBucket], method: str) -> Calibrator:
    """Fit `method` on score buckets (score_buckets')."""
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


@dataclass(frozen=True)
class CalibrationChoice:
    """The calibrator a binary model keeps (None: the raw scores) and the figures that chose it."""

    method: str  # none | platt | isotonic
    calibrator: Calibrator | None
    metric: str  # log_loss | brier
    losses: dict[str, float]  # candidate -> held-out loss per row over the validation folds
    folds: int
    forced: bool  # the config named the method: kept whatever the figures say
    excluded: dict[str, str] = field(default_factory=dict)  # candidate -> why it could not be judged

    def figures(self) -> dict[str, float]:
        return {f"calibration_heldout_{self.metric}_{m}": v for m, v in self.losses.items()}

    def describe(self) -> str:
        losses = ", ".join(f"{m} {v:.5f}" for m, v in self.losses.items())
        how = "set by training.calibration.method" if self.forced else f"chosen over {self.folds} validation folds"
        return f"calibration {self.method} ({how}); held-out {self.metric} per row: {losses}" + \
            "".join(f"; {m} not judged: {why}" for m, why in self.excluded.items())

    def as_dict(self) -> dict[str, object]:
        return {"method": self.method, "metric": self.metric, "heldout_losses": self.losses, "folds": self.folds,
                "forced": self.forced, "excluded": self.excluded,
                "calibrator": self.calibrator.to_dict() if self.calibrator is not None else None}


@dataclass(frozen=True)
class _Cell:  # one (fold, score bucket): sums, so that folds merge by adding
    rows: int
    positives: int
    score_sum: float
    logit_sum: float


def choose_calibrator(predictions: DataFrame, method: str, *, folds: int = 5, metric: str = "log_loss",
                      order: str | None = None, key: Sequence[str] = (), label: str = LABEL,
                      score: str = "score") -> CalibrationChoice:
    """The calibrator of `predictions` (the validation split's raw scores): `method` auto picks
    among none, platt and isotonic by held-out `metric` over `folds` folds (see the module's
    docstring); platt, isotonic or none is kept as named, with the same figures beside it.

    Folds are contiguous spans of `order` (an event time) when it varies, else hash folds of
    `key`. One Spark job: a groupBy over (fold, score bucket), at most folds x 1,000 rows.
    """
    cells = _fold_cells(predictions, folds=folds, order=order, key=key, label=label, score=score)
    everything = _merged(cells, set(cells))
    positives, rows = sum(b.positives for b in everything), sum(b.rows for b in everything)
    if positives == 0 or positives == rows:
        raise CalibrationError(f"cannot calibrate on {rows} rows with {positives} positives: both classes are "
                               "needed in the validation split (use more data, or training.calibration.method: none)")
    per_fold: dict[str, list[float]] = {"none": []}
    excluded: dict[str, str] = {}
    for held in sorted(cells):
        fitted_on = _merged(cells, set(cells) - {held})
        judged = list(cells[held].values())
        per_fold["none"].append(_loss(judged, None, metric))
        for candidate in CANDIDATES:
            if candidate in excluded:
                continue
            try:
                calibrator = fit_on_buckets(fitted_on, candidate)
            except CalibrationError as exc:
                excluded[candidate] = f"fold {held}: {exc}"
                per_fold.pop(candidate, None)
                continue
            per_fold.setdefault(candidate, []).append(_loss(judged, calibrator, metric))
    judged_rows = [sum(c.rows for c in cells[f].values()) for f in sorted(cells)]
    losses = {m: sum(v) / sum(judged_rows) for m, v in per_fold.items()}
    if method != "auto":
        chosen = method
    else:
        chosen, best = "none", 0.0
        for candidate in (c for c in CANDIDATES if c in per_fold):
            gains = [(n - c) / r for n, c, r in zip(per_fold["none"], per_fold[candidate], judged_rows, strict=True)]
            mean = statistics.fmean(gains)
            spread = statistics.stdev(gains) / math.sqrt(len(gains)) if len(gains) > 1 else math.inf
            if mean > STANDARD_ERRORS * spread and mean > best:
                chosen, best = candidate, mean
    kept = None if chosen == "none" else fit_on_buckets(everything, chosen)
    return CalibrationChoice(chosen, kept, metric, losses, len(cells), forced=method != "auto",
                             excluded=excluded)


def _fold_cells(predictions: DataFrame, *, folds: int, order: str | None, key: Sequence[str], label: str,
                score: str) -> dict[int, dict[int, _Cell]]:
    labelled = predictions.where(F.col(label).isin(0, 1) & F.col(score).isNotNull())
    fold = None
    if order is not None:
        t = F.col(order).cast("timestamp").cast("double")
        span = labelled.agg(F.min(t).alias("lo"), F.max(t).alias("hi")).first()
        if span is not None and span["lo"] is not None and span["hi"] > span["lo"]:
            lo, width = float(span["lo"]), float(span["hi"]) - float(span["lo"])
            fold = F.least(F.floor((t - F.lit(lo)) / F.lit(width) * folds), F.lit(folds - 1))
    if fold is None:
        hashed = [F.col(k) for k in key] or [F.col(score)]
        fold = F.pmod(F.xxhash64(F.lit(20261205), *hashed), F.lit(folds))
    s = F.least(F.greatest(F.col(score).cast("double"), F.lit(EPS)), F.lit(1.0 - EPS))
    rows = (
        labelled.groupBy(fold.cast("int").alias("fold"), score_bucket(score, BUCKETS).alias("bucket"))
        .agg(F.count(F.lit(1)).alias("n"), F.sum(F.col(label).cast("int")).alias("pos"),
             F.sum(F.col(score).cast("double")).alias("s"), F.sum(F.log(s / (1.0 - s))).alias("z"))
        .collect()  # at most folds x BUCKETS rows
    )
    cells: dict[int, dict[int, _Cell]] = {}
    for r in rows:
        cells.setdefault(int(r["fold"]), {})[int(r["bucket"])] = _Cell(int(r["n"]), int(r["pos"]), float(r["s"]),
                                                                       float(r["z"]))
    return cells


def _merged(cells: dict[int, dict[int, _Cell]], folds: set[int]) -> list[ScoreBucket]:
    """The `folds`' cells added together per score bucket, as ScoreBuckets in ascending order."""
    merged: dict[int, list[float]] = {}
    for f in folds:
        for bucket, c in cells[f].items():
            m = merged.setdefault(bucket, [0, 0, 0.0, 0.0])
            m[0], m[1], m[2], m[3] = m[0] + c.rows, m[1] + c.positives, m[2] + c.score_sum, m[3] + c.logit_sum
    return [ScoreBucket(int(n), int(pos), s / n, z / n) for _, (n, pos, s, z) in sorted(merged.items())]


def _loss(cells: list[_Cell], calibrator: Calibrator | None, metric: str) -> float:
    """Total `metric` of the cells' rows, each row given its cell's (calibrated) mean score."""
    total = 0.0
    for c in cells:
        mean_score, mean_logit = c.score_sum / c.rows, c.logit_sum / c.rows
        if calibrator is None:
            p = mean_score
        elif calibrator.method == "platt":
            u = calibrator.params["a"] * mean_logit + calibrator.params["b"]
            p = 1.0 / (1.0 + math.exp(-u)) if u > -700 else 0.0
        else:
            p = _interp(mean_score, calibrator.params["x"], calibrator.params["y"])
        p = min(max(p, EPS), 1.0 - EPS)
        if metric == "brier":
            total += c.rows * p * p - 2.0 * p * c.positives + c.positives
        else:
            total -= c.positives * math.log(p) + (c.rows - c.positives) * math.log(1.0 - p)
    return total


def _interp(x: float, xs: list[float], ys: list[float]) -> float:
    """model.calibrator's isotonic mapping, in Python: linear between knots, constant beyond."""
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    i = bisect.bisect_left(xs, x)  # the first knot at or above x (the knots ascend)
    if xs[i] == xs[i - 1]:
        return ys[i]
    return ys[i - 1] + (ys[i] - ys[i - 1]) * (x - xs[i - 1]) / (xs[i] - xs[i - 1])
