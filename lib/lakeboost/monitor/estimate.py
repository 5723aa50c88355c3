"""Model performance estimated before the labels arrive.

Binary models: confidence-based performance estimation (CBPE, as NannyML defines it). A
calibrated score p says the row is a positive with probability p, so a window's expected
confusion counts at any threshold are sums of p (expected positives) and of 1 - p (expected
negatives) over the rows above and below it. From those, per window (and slice): the expected
ROC AUC and PR AUC (the curve of expected counts over the 1,000 score buckets the realized
metrics use, `performance.BINS`), precision and recall at the model's threshold, and the
expected base rate. The point estimate is NannyML's: the metric of the expected counts.

Its interval is a sampling interval: where the realized metric would land if the labels were
drawn as Bernoulli(score), which is what "the model is calibrated on this window" means. Each
draw gives every (bucket, side of the threshold) cell Binomial(rows, mean score) positives;
within a bucket 0.001 wide the scores are nearly equal, so this is the row-level draw's law
(its variance n·p̄(1-p̄) is at most 0.25/1000² per row above the exact Σp(1-p)). An analytic
interval exists for precision (a sum of independent Bernoullis over a fixed count) and, by the
delta method, for recall, but not for an area under a curve whose every point moves with the
draw (Hanley-McNeil's needs the score distribution to be binormal-like); drawing the cells
gives every metric's interval the same meaning, on the driver, in milliseconds: 1,000 cells x
`draws` per window. The interval is the realized metric's spread, not the estimate's error:
when calibration fails under the shift (p no longer P(y | x)), the realized value leaves it.

Regression models: direct loss estimation (DLE). The regression model carries a loss model
(lakeboost.model.loss, fitted on its validation split at training time, lakeboost.train.loss):
from a row's inputs and prediction, its expected |error| and error², as Spark expressions.
Their means over a window's rows estimate its MAE and MSE (RMSE is its root). The interval is
the estimate times the quantiles of realized / estimated loss that validation windows of the
same size showed (out-of-fold estimates, windows drawn as contiguous runs of rows): heavy tails,
errors correlated in time and the loss model's own error are in it, as validation had them.
A central-limit interval with independent rows, which this replaced, missed 8 of 8 bike-rental
weeks (bench/results/estimate_dle_bikes.txt). Where a window's inputs moved where validation
has few rows, its estimate leans on few of them, the known limit of a loss model fitted on
the past.

Both read their input once: one groupBy per call (CBPE: over window, slice, score bucket and
side of the threshold; DLE: over window and slice, the loss model's expressions inside), no Python
UDF, and only the small aggregates reach the driver. The results are `Estimate` rows, the
monitor's records' shape: window, slice, metric, estimate, low, high, rows.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakeboost.metrics.base import EvaluationError, require_columns
from lakeboost.metrics.binary import score_bucket
from lakeboost.model.loss import RATIO_LEVELS, LossModel
from lakeboost.monitor.performance import BINS, WINDOW, window_start

log = logging.getLogger(__name__)

SLICE = "slice"
CBPE_METRICS = ("roc_auc", "pr_auc", "precision", "recall", "base_rate")
DLE_METRICS = ("mae", "rmse")


@dataclass(frozen=True)
class Estimate:
    """One metric's estimate for a window (and slice value): `low`-`high` is its interval at the
    call's `level`; `rows` the rows it was estimated from. `slice` is None without `slice_by`;
    a NULL slice value reads "(null)"."""

    window_start: dt.datetime
    slice: str | None
    metric: str
    estimate: float | None
    low: float | None
    high: float | None
    rows: int


ESTIMATE_SCHEMA = T.StructType([
    T.StructField(WINDOW, T.TimestampType()), T.StructField(SLICE, T.StringType()),
    T.StructField("metric", T.StringType()), T.StructField("estimate", T.DoubleType()),
    T.StructField("low", T.DoubleType()), T.StructField("high", T.DoubleType()),
    T.StructField("rows", T.LongType()),
])


def estimates_frame(spark: SparkSession, estimates: list[Estimate]) -> DataFrame:
    """The estimates as a small DataFrame (ESTIMATE_SCHEMA), e.g. to write beside the records."""
    return spark.createDataFrame([(e.window_start, e.slice, e.metric, e.estimate, e.low, e.high, e.rows)
                                  for e in estimates], ESTIMATE_SCHEMA)


def _slice_value(slice_by: str | None) -> Column:
    return (F.coalesce(F.col(slice_by).cast("string"), F.lit("(null)")) if slice_by
            else F.lit(None).cast("string"))


def _keys(event_time: str, window: str, slice_by: str | None) -> list[Column]:
    return [window_start(event_time, window).alias(WINDOW), _slice_value(slice_by).alias(SLICE)]


def _check_level(level: float, draws: int | None = None) -> None:
    if not 0.0 < level < 1.0:
        raise EvaluationError(f"level: expected a coverage in (0, 1), found {level}")
    if draws is not None and draws < 20:
        raise EvaluationError(f"draws: expected at least 20 label draws for an interval, found {draws}")


# ---------------------------------------------------------------------------------------------
# CBPE (binary)


def cbpe_by_window(scored: DataFrame, *, event_time: str, window: str, threshold: float,
                   slice_by: str | None = None, score: str = "score", bins: int = BINS, draws: int = 400,
                   level: float = 0.95, seed: int = 0) -> list[Estimate]:
    """Expected ROC AUC, PR AUC, precision and recall at `threshold`, and base rate, per window
    (`window`: hour, day or week of `event_time`) and, with `slice_by`, per value of that column,
    from the calibrated probability `score` alone (CBPE; see the module's docstring).

    One groupBy (one Spark job, two with adaptive execution) over (window, slice, score bucket,
    score >= threshold), at most 1,001 cells per window and slice to the driver; rows
    without a score or an event time (no window) are left out. `low`/`high` hold the central `level` share of the metric
    over `draws` label draws Bernoulli(score) (seeded: the same input gives the same interval).
    A metric a window cannot have (precision with no row at or above the threshold) is None.
    """
    [out] = cbpe_by_windows(scored, event_time=event_time, window=window, threshold=threshold, slices=[slice_by],
                            score=score, bins=bins, draws=draws, level=level, seed=seed)
    return out


def cbpe_by_windows(scored: DataFrame, *, event_time: str, window: str, threshold: float,
                    slices: Sequence[str | None], score: str = "score", bins: int = BINS, draws: int = 400,
                    level: float = 0.95, seed: int = 0) -> list[list[Estimate]]:
    """`cbpe_by_window` once per entry of `slices` (a column to slice by, or None: the whole
    window), all in one aggregation: each row counted once per entry (an exploded (part, slice)
    pair), the cells split by part on the driver. Each part draws from its own generator seeded
    `seed`, in the order of its own groups, so its estimates and intervals are exactly those of
    its own `cbpe_by_window` call."""
    _check_level(level, draws)
    require_columns(scored, event_time, score, *[c for c in slices if c])
    if not slices:
        return []
    p = F.least(F.greatest(F.col(score).cast("double"), F.lit(0.0)), F.lit(1.0))
    parts = F.explode(F.array(*[F.struct(F.lit(i).alias("part"), _slice_value(by).alias(SLICE))
                                for i, by in enumerate(slices)]))
    cells = (
        scored.where(F.col(score).isNotNull() & F.col(event_time).isNotNull())
        .select(window_start(event_time, window).alias(WINDOW), parts.alias("_part"),
                score_bucket(score, bins).alias("b"), (F.col(score) >= F.lit(float(threshold))).alias("above"),
                p.alias("p"))
        .groupBy(WINDOW, F.col("_part.part").alias("part"), F.col(f"_part.{SLICE}").alias(SLICE), "b", "above")
        .agg(F.count(F.lit(1)).alias("n"), F.sum("p").alias("sp"))
        .collect()  # parts x windows x slices x at most 1,001 cells
    )
    groups: list[dict[tuple[Any, Any], list[tuple[int, bool, int, float]]]] = [{} for _ in slices]
    for c in cells:
        groups[int(c["part"])].setdefault((c[WINDOW], c[SLICE]), []).append(
            (int(c["b"]), bool(c["above"]), int(c["n"]), float(c["sp"])))
    results = []
    for mine in groups:
        rng = np.random.default_rng(seed)
        out = []
        for (start, slice_value), group in sorted(mine.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
            metrics = cbpe_from_cells(group, draws=draws, level=level, rng=rng)
            rows = sum(n for _, _, n, _ in group)
            out += [Estimate(start, slice_value, name, *values, rows) for name, values in metrics.items()]
        results.append(out)
    return results


def cbpe_from_cells(cells: list[tuple[int, bool, int, float]], *, draws: int, level: float,
                    rng: np.random.Generator) -> dict[str, tuple[float | None, float | None, float | None]]:
    """metric -> (estimate, low, high) from (bucket, above threshold, rows, sum of scores) cells."""
    ordered = sorted(cells, key=lambda c: (c[0], c[1]), reverse=True)  # highest scores first
    n = np.array([c[2] for c in ordered], dtype=float)
    expected_pos = np.array([c[3] for c in ordered], dtype=float)
    above = np.array([c[1] for c in ordered], dtype=bool)
    share = np.clip(expected_pos / np.maximum(n, 1.0), 0.0, 1.0)
    drawn_pos = rng.binomial(n.astype(np.int64), np.broadcast_to(share, (draws, len(n)))).astype(float)
    expected = _metrics(expected_pos[None, :], n, above)
    sampled = _metrics(drawn_pos, n, above)
    tail = (1.0 - level) / 2.0
    out: dict[str, tuple[float | None, float | None, float | None]] = {}
    for name in CBPE_METRICS:
        value = float(expected[name][0])
        values = sampled[name][np.isfinite(sampled[name])]
        if not np.isfinite(value) or values.size < draws // 2:
            out[name] = (None if not np.isfinite(value) else value, None, None)
            continue
        low, high = np.quantile(values, [tail, 1.0 - tail])
        out[name] = (value, float(low), float(high))
    return out


def _metrics(pos: np.ndarray, n: np.ndarray, above: np.ndarray) -> dict[str, np.ndarray]:
    """Each metric per row of `pos` (draws x cells, cells by descending score): the binned
    curve's areas (as metrics.binary's roc_points / pr_points / trapezoid) and the threshold's
    confusion metrics. NaN where a metric is undefined (no positive, no negative)."""
    neg = n[None, :] - pos
    tp, fp = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
    positives, negatives = tp[:, -1:], fp[:, -1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        fpr = np.hstack([np.zeros_like(positives), fp / negatives])
        tpr = np.hstack([np.zeros_like(positives), tp / positives])
        roc = np.sum(np.diff(fpr, axis=1) * (tpr[:, 1:] + tpr[:, :-1]) / 2.0, axis=1)
        precision_curve = tp / np.maximum(tp + fp, 1e-300)
        precision_curve = np.hstack([precision_curve[:, :1], precision_curve])
        pr = np.sum(np.diff(tpr, axis=1) * (precision_curve[:, 1:] + precision_curve[:, :-1]) / 2.0, axis=1)
        tp_at = pos[:, above].sum(axis=1)
        predicted = n[above].sum()
        precision = tp_at / predicted if predicted > 0 else np.full(len(pos), np.nan)
        recall = tp_at / positives[:, 0]
    undefined = (positives[:, 0] <= 0) | (negatives[:, 0] <= 0)
    roc[undefined], pr[undefined] = np.nan, np.nan
    return {"roc_auc": roc, "pr_auc": pr, "precision": precision, "recall": recall,
            "base_rate": positives[:, 0] / n.sum()}


# ---------------------------------------------------------------------------------------------
# DLE (regression)


def dle_by_window(scored: DataFrame, model: LossModel, *, event_time: str, window: str,
                  slice_by: str | None = None, prediction: str = "score", level: float = 0.95) -> list[Estimate]:
    """Estimated MAE and RMSE per window (and slice value) of the regression predictions
    `prediction` in `scored`, before their labels: the means of the loss model's expected |error|
    and error² over the window's rows (DLE; see the module's docstring). `scored` holds the
    model's inputs encoded as the booster reads them (`model.inputs`). One Spark job. The
    interval: the estimate times the `level` quantiles of realized / estimated loss over
    validation windows of the window's rows (`LossModel.interval`; RMSE from MSE's), none for a
    window smaller than the smallest validation windows (`low`/`high` None: not judged)."""
    _check_level(level)
    widest = 1.0 - 2.0 * RATIO_LEVELS[0]
    if level > widest:  # beyond the stored quantiles the interval would be the widest's, mislabelled
        raise EvaluationError(f"level: DLE's intervals reach at most {widest:.0%} coverage (the quantiles the loss "
                              f"model stores, lakeboost.model.loss.RATIO_LEVELS); found {level}")
    require_columns(scored, event_time, prediction, *model.inputs, *([slice_by] if slice_by else []))
    rows = (
        model.inputs_of(scored.where(F.col(prediction).isNotNull() & F.col(event_time).isNotNull()), prediction)
        .groupBy(*_keys(event_time, window, slice_by))
        .agg(F.count(F.lit(1)).alias("n"), F.avg(model.column("abs")).alias("mae"),
             F.avg(model.column("sq")).alias("mse"))
        .collect()  # one row per window and slice
    )
    out = []
    for r in sorted(rows, key=lambda r: (r[WINDOW], r[SLICE] or "")):
        n, mae, mse = int(r["n"]), float(r["mae"]), float(r["mse"])
        out += [Estimate(r[WINDOW], r[SLICE], "mae", mae, *_scaled(mae, model.interval("abs", n, level)), n),
                Estimate(r[WINDOW], r[SLICE], "rmse", mse ** 0.5,
                         *_scaled(mse, model.interval("sq", n, level), root=True), n)]
    return out


def _scaled(estimate: float, multipliers: tuple[float, float] | None, *, root: bool = False,
            ) -> tuple[float | None, float | None]:
    """The interval (low, high) of `estimate` from the loss model's multipliers (square-rooted for
    RMSE from MSE's); (None, None) where the window is smaller than any validation measured, so
    the estimate is shown but never judged (`estimate_breached` needs its interval)."""
    if multipliers is None:
        return None, None
    low, high = estimate * multipliers[0], estimate * multipliers[1]
    return (low ** 0.5, high ** 0.5) if root else (low, high)


# ---------------------------------------------------------------------------------------------
# Judging an estimate


def estimate_breached(estimate: Estimate, bound: float | None, *, higher_is_better: bool,
                      confident: bool = False) -> bool:
    """Whether the estimate crosses the decay bound (`performance.decay_bound`): the estimate
    itself, or with `confident` its whole interval (`high` below a higher-is-better bound), so
    that a window whose realized value could still pass, if the model stays calibrated, is not
    called decayed."""
    if bound is None or estimate.estimate is None:
        return False
    value = (estimate.high if higher_is_better else estimate.low) if confident else estimate.estimate
    if value is None:
        return False
    return value < bound if higher_is_better else value > bound
