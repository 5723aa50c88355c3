"""Binary classification metrics: binned curves, exact AUCs, confusion metrics and the threshold.

Every metric is a Spark aggregation. Only small aggregates reach the driver (at most `bins` rows
of binned counts), never the prediction set. Each public function reads its input once or a few
times, so cache an expensive `predictions` DataFrame before calling.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakeboost.borrowed import jvm
from lakeboost.config.training import ThresholdConfig
from lakeboost.metrics.base import EPS, LABEL, EvaluationError, count_if, require_columns
from lakeboost.spark.rows import first_row

# The areas MLlib's public evaluator computes, by the names lakeboost reports them under.
AREAS: tuple[tuple[str, Literal["areaUnderROC", "areaUnderPR"]], ...] = (("roc_auc", "areaUnderROC"),
                                                                        ("pr_auc", "areaUnderPR"))

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BinaryCurve:
    """Confusion counts per threshold, thresholds descending.

    A threshold is the lower edge of a non-empty score bucket; at threshold t a row is predicted
    positive when score >= t. Empty buckets are left out: they repeat their neighbour's counts.
    """

    thresholds: list[float]
    tp: list[int]
    fp: list[int]
    fn: list[int]
    tn: list[int]

    @property
    def positives(self) -> int:
        return self.tp[0] + self.fn[0] if self.thresholds else 0

    @property
    def negatives(self) -> int:
        return self.fp[0] + self.tn[0] if self.thresholds else 0


def score_bucket(score: str, bins: int) -> Column:
    """Equal-width bucket b in [0, bins) of a score in [0, 1], such that score >= b / bins exactly."""
    s = F.col(score).cast("double")
    raw = F.floor(s * bins)
    # score * bins can round across an integer (0.58 * 50 = 28.999...), which would disagree with
    # the `score >= threshold` test binary_metrics applies; nudge the bucket to match the edge.
    exact = raw + F.when(s >= (raw + 1) / bins, 1).when(s < raw / bins, -1).otherwise(0)
    # A score of exactly 1.0 (or a value outside [0, 1]) belongs to the nearest edge bucket; a
    # null score has none (greatest() would skip the null and put it in bucket 0).
    return F.when(s.isNotNull(), F.least(F.greatest(exact, F.lit(0)), F.lit(bins - 1)))


def binary_curve(predictions: DataFrame, *, bins: int = 1000, label: str = LABEL,
                 score: str = "score") -> BinaryCurve:
    """TP/FP/FN/TN at each bucket edge, from one groupBy over equal-width score buckets in [0, 1].

    Rows whose label is not 0/1 or whose score is null are skipped with a warning.
    """
    if bins < 1:
        raise EvaluationError(f"bins must be >= 1, got {bins}")
    require_columns(predictions, label, score)
    rows = (
        predictions
        .groupBy(score_bucket(score, bins).alias("bucket"))
        .agg(count_if(F.col(label) == 1).alias("pos"), count_if(F.col(label) == 0).alias("neg"),
             F.count(F.lit(1)).alias("rows"))
        .collect()  # at most bins + 1 rows
    )
    skipped = sum(r["rows"] - (0 if r["bucket"] is None else r["pos"] + r["neg"]) for r in rows)
    if skipped:
        log.warning("binary_curve skipped %d rows with a null score or a label other than 0/1", skipped)
    return curve_from_buckets([(int(r["bucket"]), int(r["pos"]), int(r["neg"])) for r in rows
                               if r["bucket"] is not None and r["pos"] + r["neg"] > 0], bins=bins)


def curve_from_buckets(counts: list[tuple[int, int, int]], *, bins: int) -> BinaryCurve:
    """The curve from (bucket, positives, negatives) counts of `score_bucket(score, bins)`."""
    thresholds, tp, fp = [], [], []
    cum_pos = cum_neg = 0
    for bucket, pos, neg in sorted(counts, reverse=True):  # from the highest bucket down: cumulative sums
        cum_pos, cum_neg = cum_pos + pos, cum_neg + neg
        thresholds.append(bucket / bins)
        tp.append(cum_pos)
        fp.append(cum_neg)
    return BinaryCurve(thresholds=thresholds, tp=tp, fp=fp,
                       fn=[cum_pos - t for t in tp], tn=[cum_neg - f for f in fp])


def roc_points(curve: BinaryCurve) -> tuple[list[float], list[float]]:
    """(fpr, tpr) from (0, 0) to (1, 1) for the binned curve."""
    pos, neg = max(curve.positives, 1), max(curve.negatives, 1)
    return [0.0] + [f / neg for f in curve.fp], [0.0] + [t / pos for t in curve.tp]


def pr_points(curve: BinaryCurve) -> tuple[list[float], list[float]]:
    """(recall, precision), starting at recall 0 with the first point's precision (as Spark does)."""
    pos = max(curve.positives, 1)
    recall = [t / pos for t in curve.tp]
    precision = [t / (t + f) if t + f else 1.0 for t, f in zip(curve.tp, curve.fp, strict=True)]
    return [0.0] + recall, precision[:1] + precision


def trapezoid(x: list[float], y: list[float]) -> float:
    return sum((x[i + 1] - x[i]) * (y[i + 1] + y[i]) / 2 for i in range(len(x) - 1))


def binary_metrics(predictions: DataFrame, *, threshold: float, curve: BinaryCurve | None = None,
                   label: str = LABEL, score: str = "score") -> dict[str, float]:
    """AUCs (Spark's evaluator, exact), then log loss, Brier and confusion counts at `threshold` in one pass.

    With `curve`, `roc_auc_binned` / `pr_auc_binned` are added: the same areas from the binned
    curve, a cheap cross-check of the exact ones.
    """
    require_columns(predictions, label, score)
    y, s = F.col(label).cast("double"), F.col(score).cast("double")
    valid = F.col(label).isin(0, 1) & s.isNotNull()
    positive, predicted = y == 1.0, s >= F.lit(float(threshold))
    p = F.least(F.greatest(s, F.lit(EPS)), F.lit(1.0 - EPS))
    loss = -(y * F.log(p) + (1.0 - y) * F.log(1.0 - p))
    agg = first_row(predictions.agg(
        F.count(F.lit(1)).alias("all_rows"), count_if(valid).alias("rows"),
        count_if(valid & positive & predicted).alias("tp"), count_if(valid & ~positive & predicted).alias("fp"),
        count_if(valid & positive & ~predicted).alias("fn"), count_if(valid & ~positive & ~predicted).alias("tn"),
        F.sum(F.when(valid, loss)).alias("loss"), F.sum(F.when(valid, (s - y) * (s - y))).alias("sq_err"),
    ))
    rows = int(agg["rows"] or 0)
    if rows == 0:
        raise EvaluationError(f"no row with {label} in (0, 1) and a non-null {score}: nothing to evaluate")
    if agg["all_rows"] > rows:
        log.warning("binary_metrics skipped %d rows with a null score or a label other than 0/1",
                    agg["all_rows"] - rows)
    metrics = confusion_metrics(rows=rows, tp=int(agg["tp"]), fp=int(agg["fp"]), fn=int(agg["fn"]),
                                tn=int(agg["tn"]), threshold=threshold, loss=agg["loss"], sq_err=agg["sq_err"])
    metrics.update(exact_aucs(predictions.where(valid).select(y.alias(LABEL), s.alias("score")),
                              int(metrics["positives"]), rows - int(metrics["positives"])))
    if curve is not None:
        metrics.update(binned_aucs(curve))
    return metrics


def confusion_metrics(*, rows: int, tp: int, fp: int, fn: int, tn: int, threshold: float, loss: float,
                      sq_err: float) -> dict[str, float]:
    """The threshold's metrics from its confusion counts and the summed log loss and squared error."""
    return {
        "rows": rows, "positives": tp + fn, "base_rate": (tp + fn) / rows, "threshold": float(threshold),
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "precision": tp / (tp + fp) if tp + fp else 0.0, "recall": tp / (tp + fn) if tp + fn else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0, "accuracy": (tp + tn) / rows,
        "log_loss": loss / rows, "brier": sq_err / rows,
    }


def binned_aucs(curve: BinaryCurve) -> dict[str, float]:
    """The areas under the binned curve: a cheap cross-check of the exact ones."""
    return {"roc_auc_binned": trapezoid(*roc_points(curve)), "pr_auc_binned": trapezoid(*pr_points(curve))}


def exact_aucs(scored: DataFrame, positives: int, negatives: int) -> dict[str, float]:
    """ROC and PR AUC of the (LABEL, score) rows, exact."""
    if positives == 0 or negatives == 0:
        log.warning("AUCs are undefined with %d positives and %d negatives; reporting NaN", positives, negatives)
        return {"roc_auc": float("nan"), "pr_auc": float("nan")}
    pairs = scored.select(F.col("score").cast("double").alias("score"), F.col(LABEL).cast("double").alias(LABEL))
    if jvm.available(scored.sparkSession):  # both areas from one sort (borrowed/jvm.py)
        roc_auc, pr_auc = jvm.exact_binary_aucs(pairs)
        return {"roc_auc": roc_auc, "pr_auc": pr_auc}
    # The public evaluator over the same MLlib metrics, not down-sampled (numBins 0): one sort per area.
    return {name: float(BinaryClassificationEvaluator(rawPredictionCol="score", labelCol=LABEL, numBins=0,
                                                      metricName=metric).evaluate(pairs))
            for name, metric in AREAS}


def choose_threshold(curve: BinaryCurve, config: ThresholdConfig) -> float:
    """The decision threshold for `config.strategy`; ties go to the higher threshold.

    max_f1: the F1 maximum. target_precision: the most recall among thresholds whose precision
    reaches the target. target_recall: the highest threshold whose recall reaches the target.
    fixed: config.target. An unreachable target falls back to max_f1 with a warning.
    """
    if config.strategy == "fixed":
        return float(config.target)
    if not curve.thresholds:
        raise EvaluationError("the curve is empty (no scored rows with a 0/1 label); cannot choose a threshold")
    pos = curve.positives
    f1 = [2 * t / (2 * t + f + n) if t + f + n else 0.0 for t, f, n in zip(curve.tp, curve.fp, curve.fn, strict=True)]
    best_f1 = min(range(len(f1)), key=lambda i: (-f1[i], i))  # thresholds descend: lowest index is highest
    if config.strategy == "max_f1":
        return curve.thresholds[best_f1]
    recall = [t / pos if pos else 0.0 for t in curve.tp]
    if config.strategy == "target_precision":
        precision = [t / (t + f) if t + f else 0.0 for t, f in zip(curve.tp, curve.fp, strict=True)]
        feasible = [i for i, v in enumerate(precision) if v >= config.target]
        if feasible:
            return curve.thresholds[min(feasible, key=lambda i: (-recall[i], i))]
        reached = max(precision)
    else:
        feasible = [i for i, v in enumerate(recall) if v >= config.target]
        if feasible:
            return curve.thresholds[min(feasible)]
        reached = max(recall)
    log.warning("threshold strategy %s cannot reach %.4f (best %.4f); falling back to max_f1 threshold %.4f",
                config.strategy, config.target, reached, curve.thresholds[best_f1])
    return curve.thresholds[best_f1]
