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
from pyspark.sql.window import Window

from lakeboost.errors import ConfigError
from lakeboost.spark.sql_text import quoted_name

NUMERIC_METRICS = ("null_share", "min", "p05", "p50", "p95", "max", "mean", "distinct")
CATEGORICAL_METRICS = ("null_share", "distinct")
QUANTILES = (0.05, 0.5, 0.95)
Profile = dict[Any, dict[str, dict[str, float | None]]]  # group -> column -> metric -> value


def profile_by(df: DataFrame, numeric: Sequence[str], categorical: Sequence[str], *, by: str) -> Profile:
    """Each column's profile per group of `by` (the window), in one aggregation: one row per group
    reaches the driver, with a handful of numbers per column."""
    return profile_and_span_by(df, numeric, categorical, by=by)[0]


def profile_and_span_by(df: DataFrame, numeric: Sequence[str], categorical: Sequence[str], *, by: str,
                        time_column: str | None = None) -> tuple[Profile, dict[Any, tuple[Any, Any]]]:
    """`profile_by`, and with `time_column` each group's first and last time in the same
    aggregation (the span a table covers, which the monitor needs beside the rows per window)."""
    aggs = [F.count(F.lit(1)).alias("n")]
    if time_column is not None:
        aggs += [F.min(quoted_name(time_column)).alias("_first"), F.max(quoted_name(time_column)).alias("_last")]
    for i, column in enumerate([*numeric, *categorical]):
        value = F.col(quoted_name(column))
        aggs += [F.count(value).alias(f"c{i}_count"), F.approx_count_distinct(value).alias(f"c{i}_distinct")]
        if column in numeric:
            number = value.cast("double")
            aggs += [F.min(number).alias(f"c{i}_min"), F.max(number).alias(f"c{i}_max"),
                     F.avg(number).alias(f"c{i}_mean"),
                     F.percentile_approx(number, list(QUANTILES), 1000).alias(f"c{i}_q")]
    out: Profile = {}
    spans: dict[Any, tuple[Any, Any]] = {}
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
        if time_column is not None:
            spans[row[by]] = (row["_first"], row["_last"])
    return out, spans


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
    small aggregation for all columns). A column missing from either side is refused, naming it."""
    check_slice_columns(reference, current, columns, table=table)
    values = slice_values(reference, columns, most=most)
    return [Slicer(column, values[column]) for column in columns]


def check_slice_columns(reference: DataFrame, current: DataFrame, columns: Sequence[str], *, table: str) -> None:
    """Refuses a `monitor.slices` column missing from the training set or from `table`'s scored inputs."""
    for column in columns:
        lacking = [side for side, df in (("the training set", reference), (f"{table}'s scored inputs", current))
                   if column not in df.columns]
        if lacking:
            raise ConfigError(f"monitor.slices: {column!r} is not in {' or '.join(lacking)}; a slice column must "
                              f"be a model input kept with the predictions (known: {sorted(current.columns)})")


def slice_values(reference: DataFrame, columns: Sequence[str], *, most: int) -> dict[str, tuple[str, ...]]:
    """Column -> the reference's `most` most frequent non-NULL values (as text; ties by value), for
    every column in one aggregation: only the kept values reach the driver."""
    if not columns:
        return {}
    cells = F.explode(F.array(*[F.struct(F.lit(i).alias("c"), F.col(quoted_name(c)).cast("string").alias("v"))
                                for i, c in enumerate(columns)])).alias("x")
    ranked = Window.partitionBy("c").orderBy(F.desc("count"), F.col("v")).rowsBetween(
        Window.unboundedPreceding, Window.currentRow)
    top = (reference.select(cells).select("x.c", "x.v").where(F.col("v").isNotNull())
           .groupBy("c", "v").count()
           .withColumn("rank", F.row_number().over(ranked))
           .where(F.col("rank") <= most).collect())  # at most `most` rows per column
    found: dict[int, list[tuple[int, str]]] = {}
    for r in top:
        found.setdefault(int(r["c"]), []).append((int(r["rank"]), r["v"]))
    return {c: tuple(v for _, v in sorted(found.get(i, []))) for i, c in enumerate(columns)}
