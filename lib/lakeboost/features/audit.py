"""Leakage audit, run with every training-set build.

Two checks, both distributed and cheap (three passes over the examples at most):
1. time: every feature's observation time is strictly before the example's time;
2. predictiveness: no single feature separates the labels almost perfectly on its own
   (ROC AUC from a 64-bin histogram per feature, computed in one aggregation).
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeboost.errors import LeakageError
from lakeboost.spark.rows import first_row

BINS = 64


def audit_leakage(df: DataFrame, *, label: str, event_time: str, time_columns: Sequence[str],
                  feature_columns: Sequence[str], max_auc: float) -> dict[str, float]:
    """Raise LeakageError naming the offending feature; return each feature's single-feature AUC."""
    present = [c for c in time_columns if c in df.columns]
    if present:
        late = first_row(df.agg(*[F.sum((F.col(c) >= F.col(event_time)).cast("int")).alias(c) for c in present]))
        offenders = {c: int(late[c] or 0) for c in present if (late[c] or 0) > 0}
        if offenders:
            name, count = next(iter(offenders.items()))
            raise LeakageError(
                f"leakage: {count} example(s) use data observed at or after their own time via {name!r} "
                f"(must be strictly before {event_time}); check the feature's window frame or as-of join")
    aucs = single_feature_auc(df, label=label, features=feature_columns)
    worst = max(aucs.items(), key=lambda kv: kv[1], default=None)
    if worst and worst[1] > max_auc:
        raise LeakageError(
            f"leakage: feature {worst[0]!r} alone predicts {label!r} with ROC AUC {worst[1]:.4f} "
            f"(> {max_auc}); a feature this good is usually derived from the label or the future. "
            "Remove it, or raise gold.training_set.max_single_feature_auc if it is genuinely known in time")
    return aucs


def single_feature_auc(df: DataFrame, *, label: str, features: Sequence[str]) -> dict[str, float]:
    """max(AUC, 1 - AUC) per numeric feature, from binned label counts (nulls in one bin)."""
    numeric = [c for c in features if df.schema[c].dataType.typeName() in
               ("double", "float", "integer", "long", "short", "byte", "decimal")]
    if not numeric:
        return {}
    cast = df.select(F.col(label).cast("int").alias("__y"), *[F.col(c).cast("double").alias(c) for c in numeric])
    bounds = first_row(
        cast.agg(*[F.min(c).alias(f"lo_{c}") for c in numeric], *[F.max(c).alias(f"hi_{c}") for c in numeric]))
    binned = []
    for c in numeric:
        lo, hi = bounds[f"lo_{c}"], bounds[f"hi_{c}"]
        width = (hi - lo) / BINS if lo is not None and hi is not None and hi > lo else None
        value = F.col(c)
        bin_expr = F.lit(0) if width is None else F.least(F.floor((value - F.lit(lo)) / F.lit(width)), F.lit(BINS - 1))
        binned.append(F.struct(F.lit(c).alias("feature"), F.coalesce(bin_expr.cast("int"), F.lit(-1)).alias("bin")))
    counts = (
        cast.select("__y", F.explode(F.array(*binned)).alias("b"))
        .groupBy("b.feature", "b.bin")
        .agg(F.sum("__y").alias("pos"), F.sum(1 - F.col("__y")).alias("neg"))
        .collect()  # features x 65 bins: a few thousand small rows
    )
    per_feature: dict[str, list[tuple[int, int, int]]] = {}
    for row in counts:
        per_feature.setdefault(row["feature"], []).append((row["bin"], int(row["pos"]), int(row["neg"])))
    return {feature: _auc(sorted(bins)) for feature, bins in per_feature.items()}


def _auc(bins: list[tuple[int, int, int]]) -> float:
    total_pos = sum(p for _, p, _ in bins)
    total_neg = sum(n for _, _, n in bins)
    if not total_pos or not total_neg:
        return 0.5
    area, neg_below = 0.0, 0
    for _, pos, neg in bins:
        area += pos * (neg_below + neg / 2)  # ties within a bin count half
        neg_below += neg
    auc = area / (total_pos * total_neg)
    return max(auc, 1 - auc)
