"""Leakage audit, run with every training-set build.

Two checks, both distributed and cheap (two passes over the examples):
1. time: every feature's observation time is strictly before the example's time;
2. predictiveness: no single feature separates the labels almost perfectly on its own
   (ROC AUC from a 64-bin histogram per feature, computed in one aggregation).
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F

from lakeboost.errors import LeakageError
from lakeboost.spark.rows import first_row
from lakeboost.spark.sql_text import quoted_name

BINS = 64


def audit_leakage(df: DataFrame, *, label: str, event_time: str, time_columns: Sequence[str],
                  feature_columns: Sequence[str], max_auc: float) -> dict[str, float]:
    """Raise LeakageError naming the offending feature; return each feature's single-feature AUC."""
    present = [c for c in time_columns if c in df.columns]
    numeric = _numeric(df, feature_columns)
    # One pass for the time check and the ranges the AUC histograms need.
    late = [F.count_if(F.col(quoted_name(c)) >= F.col(quoted_name(event_time))).alias(f"late_{i}")
            for i, c in enumerate(present)]
    row = first_row(df.agg(*late, *_bounds(numeric))) if late or numeric else None
    offenders = {c: int(row[f"late_{i}"]) for i, c in enumerate(present) if row and row[f"late_{i}"]}
    if offenders:
        name, count = next(iter(offenders.items()))
        raise LeakageError(
            f"leakage: {count} example(s) use data observed at or after their own time via {name!r} "
            f"(must be strictly before {event_time}); check the feature's window frame or as-of join")
    aucs = _binned_aucs(df, label=label, numeric=numeric, bounds=row)
    worst = max(aucs.items(), key=lambda kv: kv[1], default=None)
    if worst and worst[1] > max_auc:
        raise LeakageError(
            f"leakage: feature {worst[0]!r} alone predicts {label!r} with ROC AUC {worst[1]:.4f} "
            f"(> {max_auc}); a feature this good is usually derived from the label or the future. "
            "Remove it, or raise gold.training_set.max_single_feature_auc if it is genuinely known in time")
    return aucs


def single_feature_auc(df: DataFrame, *, label: str, features: Sequence[str]) -> dict[str, float]:
    """max(AUC, 1 - AUC) per numeric feature, from binned label counts (nulls in one bin)."""
    numeric = _numeric(df, features)
    bounds = first_row(df.agg(*_bounds(numeric))) if numeric else None
    return _binned_aucs(df, label=label, numeric=numeric, bounds=bounds)


def _numeric(df: DataFrame, features: Sequence[str]) -> list[str]:
    return [c for c in features if df.schema[c].dataType.typeName() in
            ("double", "float", "integer", "long", "short", "byte", "decimal")]


def _bounds(numeric: Sequence[str]) -> list[Column]:
    """Aggregations: lo_<i> and hi_<i>, the range of the i-th numeric feature as a double."""
    return [agg(F.col(quoted_name(c)).cast("double")).alias(f"{name}_{i}")
            for name, agg in (("lo", F.min), ("hi", F.max)) for i, c in enumerate(numeric)]


def _binned_aucs(df: DataFrame, *, label: str, numeric: Sequence[str], bounds: Row | None) -> dict[str, float]:
    """AUC per feature from a BINS-bin histogram of its range (`bounds`), in one aggregation. The
    bins are spelt as one SQL expression: built from Python Columns they were a dozen JVM
    calls per feature."""
    if not numeric or bounds is None:
        return {}
    cells = []
    for i, c in enumerate(numeric):
        lo, hi = bounds[f"lo_{i}"], bounds[f"hi_{i}"]
        value = f"CAST({quoted_name(c)} AS DOUBLE)"
        if lo is None or hi is None or not hi > lo:
            bin_sql = f"CASE WHEN {value} IS NULL THEN -1 ELSE 0 END"
        else:  # as text, so every double reads back exactly. NULL is tested first: least() skips
            # a NULL argument, which put the NULLs in the top bin before.
            width = (hi - lo) / BINS
            scaled = f"({value} - CAST('{float(lo)!r}' AS DOUBLE)) / CAST('{float(width)!r}' AS DOUBLE)"
            bin_sql = f"CASE WHEN {value} IS NULL THEN -1 ELSE CAST(least(floor({scaled}), {BINS - 1}) AS INT) END"
        cells.append(f"named_struct('feature', {i}, 'bin', {bin_sql})")
    counts = (
        df.select(F.col(quoted_name(label)).cast("int").alias("__y"), F.expr(f"explode(array({', '.join(cells)}))")
                  .alias("b"))
        .groupBy("b.feature", "b.bin")
        .agg(F.sum("__y").alias("pos"), F.sum(1 - F.col("__y")).alias("neg"))
        .collect()  # features x 65 bins: a few thousand small rows
    )
    per_feature: dict[str, list[tuple[int, int, int]]] = {}
    for row in counts:
        per_feature.setdefault(numeric[row["feature"]], []).append((row["bin"], int(row["pos"]), int(row["neg"])))
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
