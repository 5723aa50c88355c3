"""Leakage audit, run with every training-set build.

Two checks, both distributed and cheap (three passes over the examples):
1. time: every feature's observation time is strictly before the example's time (at or before it
   for a feature declared `known: at_or_before`, whose time column says so by its name);
2. predictiveness: no single feature separates the labels almost perfectly on its own
   (ROC AUC from a 64-bin histogram per numeric feature, computed in one aggregation; a
   categorical feature by the value the model sees, its frequency encoding: the categories'
   counts, then label counts per distinct count, in one more job).

The verdict (the largest single-feature AUC, against the bar) is logged and returned with every
feature's AUC: the training set keeps them in its lineage, and the MLflow run in lineage.json.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F

from lakeboost.errors import LeakageError
from lakeboost.spark.rows import first_row
from lakeboost.spark.sql_text import quoted_name

log = logging.getLogger(__name__)
BINS = 64


@dataclass(frozen=True)
class AuditResult:
    """What the leakage audit found: each audited feature's single-feature ROC AUC (max(AUC,
    1 - AUC)) and the bar none may pass."""

    aucs: dict[str, float]
    max_auc: float
    categorical: tuple[str, ...] = ()  # those audited by their frequency encoding
    skipped: str = ""  # why the AUCs were not computed (a label that is not binary)

    @property
    def worst(self) -> tuple[str, float] | None:
        return max(self.aucs.items(), key=lambda kv: kv[1], default=None)

    def verdict(self) -> str:
        if self.skipped:
            return f"leakage audit: time check passed; single-feature AUCs not computed ({self.skipped})"
        worst = self.worst
        if worst is None:
            return "leakage audit: time check passed; no feature to audit by AUC"
        return (f"leakage audit passed: {len(self.aucs)} features ({len(self.categorical)} categorical), "
                f"largest single-feature ROC AUC {worst[1]:.4f} ({worst[0]!r}), bar {self.max_auc}")

    def as_dict(self) -> dict[str, object]:
        worst = self.worst
        return {"max_single_feature_auc": self.max_auc, "skipped": self.skipped or None,
                "largest": {"feature": worst[0], "auc": round(worst[1], 6)} if worst else None,
                "categorical": list(self.categorical),
                "aucs": {k: round(v, 6) for k, v in sorted(self.aucs.items())}}


def audit_leakage(df: DataFrame, *, label: str, event_time: str, time_columns: Sequence[str],
                  feature_columns: Sequence[str], max_auc: float, categorical: Sequence[str] = (),
                  skipped: str = "", at_or_before: Sequence[str] = ()) -> AuditResult:
    """Raise LeakageError naming the offending feature; return the audit's findings (logged).

    `time_columns` must be strictly before `event_time`, `at_or_before` ones at or before it.
    `feature_columns` are audited as numbers (those that are numeric), `categorical` by their
    frequency encoding; `skipped` says why neither is (a label that is not binary).
    """
    bounds = {c: "strictly before" for c in time_columns if c in df.columns}
    bounds |= {c: "at or before" for c in at_or_before if c in df.columns}
    present = list(bounds)
    numeric = _numeric(df, feature_columns)
    now = F.col(quoted_name(event_time))

    def too_late(column: str) -> Column:
        seen = F.col(quoted_name(column))
        return seen > now if bounds[column] == "at or before" else seen >= now

    # One pass for the time check and the ranges the AUC histograms need.
    late = [F.count_if(too_late(c)).alias(f"late_{i}") for i, c in enumerate(present)]
    row = first_row(df.agg(*late, *_bounds(numeric))) if late or numeric else None
    offenders = {c: int(row[f"late_{i}"]) for i, c in enumerate(present) if row and row[f"late_{i}"]}
    if offenders:
        name, count = next(iter(offenders.items()))
        raise LeakageError(
            f"leakage: {count} example(s) use data observed {'after' if name in at_or_before else 'at or after'} "
            f"their own time via {name!r} "
            f"(must be {bounds[name]} {event_time}); check the feature's window frame or as-of join")
    aucs = _binned_aucs(df, label=label, numeric=numeric, bounds=row)
    aucs.update(_frequency_aucs(df, label=label, columns=categorical))
    result = AuditResult(aucs, max_auc, tuple(categorical), skipped)
    worst = result.worst
    if worst and worst[1] > max_auc:
        raise LeakageError(
            f"leakage: feature {worst[0]!r} alone predicts {label!r} with ROC AUC {worst[1]:.4f} "
            f"(> {max_auc}); a feature this good is usually derived from the label or the future. "
            "Remove it, or raise gold.training_set.max_single_feature_auc if it is genuinely known in time")
    log.info("%s", result.verdict())
    return result


def single_feature_auc(df: DataFrame, *, label: str, features: Sequence[str]) -> dict[str, float]:
    """max(AUC, 1 - AUC) per numeric feature, from binned label counts (nulls in one bin)."""
    numeric = _numeric(df, features)
    bounds = first_row(df.agg(*_bounds(numeric))) if numeric else None
    return _binned_aucs(df, label=label, numeric=numeric, bounds=bounds)


def _frequency_aucs(df: DataFrame, *, label: str, columns: Sequence[str]) -> dict[str, float]:
    """AUC per categorical column of its frequency encoding (train.prepare's: a category's share
    of the rows, here of all the examples), from label counts per (column, category count):
    categories of one count share one encoded value, so they share one bin, as in the model."""
    if not columns:
        return {}
    pairs = F.explode(F.array(*[F.struct(F.lit(i).alias("feature"), F.col(quoted_name(c)).cast("string")
                                         .alias("value")) for i, c in enumerate(columns)]))
    per_category = (
        df.select(F.col(quoted_name(label)).cast("int").alias("__y"), pairs.alias("p"))
        .groupBy("p.feature", "p.value")
        .agg(F.count(F.lit(1)).alias("n"), F.sum("__y").alias("pos"))
    )
    counts = (
        per_category.groupBy("feature", "n")
        .agg(F.sum("pos").alias("pos"), F.sum(F.col("n") - F.col("pos")).alias("neg"))
        .collect()  # features x distinct category counts: at most a few hundred rows each
    )
    per_feature: dict[str, list[tuple[int, int, int]]] = {}
    for row in counts:
        per_feature.setdefault(columns[row["feature"]], []).append((int(row["n"]), int(row["pos"]), int(row["neg"])))
    return {feature: _auc(sorted(bins)) for feature, bins in per_feature.items()}


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
