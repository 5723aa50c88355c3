"""Trailing-window features per entity, all windows of an entity in one pass.

Every window of a group shares `partitionBy(entity).orderBy(event seconds)`, so Spark plans
one shuffle and one sort for the whole group however many windows and aggregates it has
(only the frames differ). No UDFs: every aggregate is a Spark built-in.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.window import WindowSpec

from lakeboost.config.features import WindowGroup

EVENT_SECONDS = "__event_seconds"


def aggregate(name: str, column: str | Column, frame: WindowSpec | None) -> Column:
    """One built-in aggregate of `column` over `frame`, or over a group's rows when `frame` is
    None (nulls ignored, as SQL does)."""
    col = F.col(column) if isinstance(column, str) else column
    over = (lambda agg: agg) if frame is None else (lambda agg: agg.over(frame))  # noqa: E731
    if name == "count":
        return over(F.count(col))
    if name == "sum":
        return over(F.sum(col))
    if name == "mean":
        return over(F.avg(col))
    if name == "min":
        return over(F.min(col))
    if name == "max":
        return over(F.max(col))
    if name == "stddev":
        return over(F.stddev_samp(col))
    if name == "distinct_count":
        return F.size(over(F.collect_set(col)))
    raise ValueError(f"unknown aggregate {name!r}")


def group_feature_columns(group_name: str, group: WindowGroup, *, timestamp: str) -> list[Column]:
    """The group's feature columns (named `<group>_<col>_<agg>_<window>`), as window expressions."""
    ordered = Window.partitionBy(*group.entity).orderBy(F.col(EVENT_SECONDS))
    columns: list[Column] = []
    for window in group.windows:
        seconds = int(window.total_seconds())
        # [t - w, t): the current second is excluded, so the event never sees itself.
        frame = ordered.rangeBetween(-seconds, -1)
        if group.count:
            columns.append(F.count(F.lit(1)).over(frame).alias(f"{group_name}_count_{window}"))
        for column, aggs in group.aggs.items():
            for agg in aggs:
                columns.append(aggregate(agg, column, frame).alias(f"{group_name}_{column}_{agg}_{window}"))
    # "Previous event" looks back at most the group's longest window, never further: an
    # unbounded lookback would make a feature depend on arbitrarily old days, and incremental
    # builds (which read `reach` days of history) could no longer reproduce it exactly.
    longest = ordered.rangeBetween(-int(max(group.windows).total_seconds()), -1)
    for column in group.last_value:
        previous = F.last(F.col(column), ignorenulls=True).over(longest)
        columns.append(previous.alias(f"{group_name}_prev_{column}"))
        columns.append(
            F.when(previous.isNull(), F.lit(None)).otherwise((F.col(column) != previous).cast("int"))
            .alias(f"{group_name}_{column}_changed")
        )
    if group.time_since_last:
        columns.append(
            (F.col(EVENT_SECONDS) - F.max(F.col(EVENT_SECONDS)).over(longest)).cast("double")
            .alias(f"{group_name}_seconds_since_last")
        )
    return columns


def with_window_features(df: DataFrame, *, groups: dict[str, WindowGroup], timestamp: str) -> DataFrame:
    """Add every group's features; one shuffle per distinct entity, none per feature."""
    out = df.withColumn(EVENT_SECONDS, F.col(timestamp).cast("long"))
    for group_name, group in groups.items():
        out = out.select("*", *group_feature_columns(group_name, group, timestamp=timestamp))
    return out.drop(EVENT_SECONDS)
