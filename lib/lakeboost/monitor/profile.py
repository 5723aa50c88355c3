"""Per-column profiles per window and the slices the monitor breaks its windows into.

A profile is what a person checks first when a chart moves: each column's NULL share, min,
5th/50th/95th percentile, max, mean and distinct count per window (categorical columns: NULL
share and distinct count), for the model's inputs, its score (the prediction distribution)
and the label as known so far. All columns of all windows come from one aggregation over
(window): percentiles by `percentile_approx` (accuracy 1,000: exact ranks below a thousand
values, within 0.1% of the rank above), distinct counts by HyperLogLog++ (5% relative standard
deviation; exact on a few values).

Slices (`monitor.slices: [country, channel]`) split every window by a column's value: the
reference's most frequent `max_slice_values` values keep their names, the rest are `other`,
NULL is `NULL`; a record's `slice` reads `country=DE`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakeboost.errors import ConfigError
from lakeboost.spark.sql_text import quoted_name

NUMERIC_METRICS = ("null_share", "min", "p05", "p50", "p95", "max", "mean", "distinct")
CATEGORICAL_METRICS = ("null_share", "distinct")
QUANTILES = (0.05, 0.5, 0.95)
Profile = dict[Any, dict[str, dict[str, float | None]]]  # group -> column -> metric -> value


def profile_by(df: DataFrame, numeric: Sequence[str], categorical: Sequence[str], *, by: str) -> Profile:
    """Each column's profile per group of `by` (the window), in one aggregation: one row per group
    reaches the driver, with a handful of numbers per column."""
    aggs = [F.count(F.lit(1)).alias("n")]
    for i, column in enumerate([*numeric, *categorical]):
        value = F.col(quoted_name(column))
        aggs += [F.count(value).alias(f"c{i}_count"), F.approx_count_distinct(value).alias(f"c{i}_distinct")]
        if column in numeric:
            number = value.cast("double")
            aggs += [F.min(number).alias(f"c{i}_min"), F.max(number).alias(f"c{i}_max"),
                     F.avg(number).alias(f"c{i}_mean"),
                     F.percentile_approx(number, list(QUANTILES), 1000).alias(f"c{i}_q")]
    out: Profile = {}
    for row in df.groupBy(by).agg(*aggs).collect():  # one row per window
        n = int(row["n"])
        columns: dict[str, dict[str, float | None]] = {}
        for i, column in enumerate([*numeric, *categorical]):
            present = int(row[f"c{i}_count"])
            metrics: dict[str, float | None] = {"null_share": (n - present) / n if n else None,
                                                "distinct": float(row[f"c{i}_distinct"])}
            if column in numeric:
                quantiles = row[f"c{i}_q"] or [None] * len(QUANTILES)
                metrics.update({"min": row[f"c{i}_min"], "max": row[f"c{i}_max"], "mean": row[f"c{i}_mean"],
                                **dict(zip(("p05", "p50", "p95"), quantiles, strict=True))})
            columns[column] = metrics
        columns["*"] = {"rows": float(n)}
        out[row[by]] = columns
    return out


@dataclass(frozen=True)
class Slicer:
    """How one slice column names a row's slice: `<column>=<value>` for the reference's most
    frequent values, `<column>=other` for the rest, `<column>=NULL`."""

    column: str
    values: tuple[str, ...]

    def expr(self) -> Column:
        value = F.col(quoted_name(self.column)).cast("string")
        named = (F.when(value.isNull(), F.lit("NULL")).when(value.isin(list(self.values)), value)
                 .otherwise(F.lit("other")))
        return F.concat(F.lit(f"{self.column}="), named)


def slicers(reference: DataFrame, current: DataFrame, columns: Sequence[str], *, most: int,
            table: str) -> list[Slicer]:
    """A Slicer per `monitor.slices` column, its values the reference's `most` most frequent (one
    small aggregation per column). A column missing from either side is refused, naming it."""
    out = []
    for column in columns:
        lacking = [side for side, df in (("the training set", reference), (f"{table}'s scored inputs", current))
                   if column not in df.columns]
        if lacking:
            raise ConfigError(f"monitor.slices: {column!r} is not in {' or '.join(lacking)}; a slice column must "
                              f"be a model input kept with the predictions (known: {sorted(current.columns)})")
        top = (reference.where(F.col(quoted_name(column)).isNotNull())
               .groupBy(F.col(quoted_name(column)).cast("string").alias("v")).count()
               .orderBy(F.desc("count"), "v").limit(most).collect())  # `most` rows
        out.append(Slicer(column, tuple(r["v"] for r in top)))
    return out
