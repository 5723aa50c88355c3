"""The features of a few events, from their entities' history, without windows over that history.

A window function computes its aggregates for *every* row of a partition: recomputing one new
day's events with windows also recomputes the month of history their frames reach, which is
most of the cost. Here each entity's history is one array (sorted by time, one shuffle), joined
to the events to compute (the targets), and each target folds only its own frame's elements.

The folds repeat Spark's own aggregates step by step, in the frame's order (the window's
buffer order: by time), so a target's values equal those of `windows.py` / `label_rates.py`
bit for bit: `sum` and `mean` add in time order from a NULL or 0.0 start, `stddev` is the
Welford update of Spark's `CentralMomentAgg` (NULL for fewer than two values), `max`/`min`
skip NULLs, `distinct_count` is the size of the set of non-NULL values, "previous" is the last
non-NULL value. Ties in time are ordered by value here, and undefined in a window (as before).
Decimal columns are not supported (their sums change type and scale): `supported` says so and
the build falls back to a full rebuild.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DataType,
    DecimalType,
    DoubleType,
    IntegralType,
    LongType,
    StructField,
    StructType,
)

from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.features import FeatureSetConfig, LabelRateGroup, WindowGroup
from lakeboost.features.label_rates import LabelSource
from lakeboost.features.outcomes import KNOWN_AS_OF

HIST, T = "__hist", "t"


def supported(features: FeatureSetConfig, schema: StructType) -> str | None:
    """None when every window aggregate can be folded here, else why not (a decimal column)."""
    types = {f.name: f.dataType for f in schema.fields}
    for name, group in features.groups.items():
        for column, aggs in group.aggs.items():
            kind = types.get(column)
            if isinstance(kind, DecimalType) and set(aggs) & {"sum", "mean", "stddev"}:
                return f"groups.{name}.aggs.{column} is a decimal"
    return None


def _entity_keys(entity: list[str]) -> list[str]:
    return [f"__e{i}" for i in range(len(entity))]


def _history_arrays(history: DataFrame, targets: DataFrame, *, entity: list[str], values: list[Column],
                    time: Column) -> DataFrame:
    """One row per entity of `targets`: `__e<i>` (the entity) and `HIST`, its history rows as
    structs (`t`, `v0`, ...) sorted by time."""
    keys = _entity_keys(entity)
    wanted = targets.select(*[F.col(e).alias(k) for e, k in zip(entity, keys, strict=True)]).distinct()
    rows = history.select(*[F.col(e).alias(k) for e, k in zip(entity, keys, strict=True)],
                          F.struct(time.cast("long").alias(T), *[v.alias(f"v{i}") for i, v in enumerate(values)])
                          .alias("__r"))
    # Only the entities of the targets (null-safe: a NULL entity is one partition of a window too).
    same = reduce(lambda a, b: a & b, [F.col(f"w.{k}").eqNullSafe(F.col(f"r.{k}")) for k in keys])
    kept = rows.alias("r").join(wanted.alias("w"), on=same, how="left_semi")
    return kept.groupBy(*keys).agg(F.sort_array(F.collect_list("__r")).alias(HIST))


def _attach(targets: DataFrame, arrays: DataFrame, *, entity: list[str], element: DataType) -> DataFrame:
    keys = _entity_keys(entity)
    same = reduce(lambda a, b: a & b, [F.col(f"x.{e}").eqNullSafe(F.col(f"a.{k}"))
                                       for e, k in zip(entity, keys, strict=True)])
    empty = F.from_json(F.lit("[]"), ArrayType(element))
    joined = targets.alias("x").join(arrays.alias("a"), on=same, how="left")
    return joined.select(*[F.col(f"x.`{c}`") for c in targets.columns],
                         F.coalesce(F.col(f"a.{HIST}"), empty).alias(HIST))


def _frame(seconds: int, now: Column) -> Column:
    """The elements in [now - seconds, now - 1]: a window's `rangeBetween(-seconds, -1)`."""
    return F.filter(F.col(HIST), lambda x: (x[T] >= now - F.lit(seconds)) & (x[T] <= now - F.lit(1)))


def _sum(frame: Column, field: str, kind: DataType) -> Column:
    total = LongType() if isinstance(kind, IntegralType) else DoubleType()
    return F.aggregate(frame, F.lit(None).cast(total),
                       lambda acc, x: F.when(x[field].isNull(), acc)
                       .otherwise(F.coalesce(acc, F.lit(0).cast(total)) + x[field].cast(total)))


def _mean(frame: Column, field: str) -> Column:
    start = F.struct(F.lit(0.0).alias("s"), F.lit(0).cast("long").alias("n"))
    return F.aggregate(
        frame, start,
        lambda acc, x: F.struct((acc["s"] + F.coalesce(x[field].cast("double"), F.lit(0.0))).alias("s"),
                                (acc["n"] + F.when(x[field].isNull(), 0).otherwise(1)).alias("n")),
        lambda acc: F.when(acc["n"] == 0, F.lit(None).cast("double")).otherwise(acc["s"] / acc["n"].cast("double")))


def _stddev(frame: Column, field: str) -> Column:
    start = F.struct(F.lit(0.0).alias("n"), F.lit(0.0).alias("avg"), F.lit(0.0).alias("m2"))

    def update(acc: Column, x: Column) -> Column:
        value = x[field].cast("double")
        n = acc["n"] + F.lit(1.0)
        delta = value - acc["avg"]
        delta_n = delta / n
        return F.when(value.isNull(), acc).otherwise(
            F.struct(n.alias("n"), (acc["avg"] + delta_n).alias("avg"),
                     (acc["m2"] + delta * (delta - delta_n)).alias("m2")))

    return F.aggregate(frame, start, update,
                       lambda acc: F.when(acc["n"] <= F.lit(1.0), F.lit(None).cast("double"))
                       .otherwise(F.sqrt(acc["m2"] / (acc["n"] - F.lit(1.0)))))


def _non_null(frame: Column, field: str) -> Column:
    return F.filter(frame, lambda x: x[field].isNotNull())


def _fold(agg: str, frame: Column, field: str, kind: DataType) -> Column:
    values: Callable[[], Column] = lambda: F.transform(frame, lambda x: x[field])  # noqa: E731
    if agg == "count":
        return F.size(_non_null(frame, field)).cast("long")
    if agg == "sum":
        return _sum(frame, field, kind)
    if agg == "mean":
        return _mean(frame, field)
    if agg == "min":
        return F.array_min(values())
    if agg == "max":
        return F.array_max(values())
    if agg == "stddev":
        return _stddev(frame, field)
    if agg == "distinct_count":
        return F.size(F.array_distinct(F.filter(values(), lambda v: v.isNotNull())))
    raise ValueError(f"unknown aggregate {agg!r}")


def with_point_window_features(targets: DataFrame, history: DataFrame, *, group_name: str, group: WindowGroup,
                              timestamp: str) -> DataFrame:
    """`targets` plus the group's columns, equal to `windows.group_feature_columns` over all
    of `history` (which must hold every row of the targets' entities in their frames)."""
    entity = list(group.entity)
    columns = list(dict.fromkeys([*group.aggs, *group.last_value]))
    field = {c: f"v{i}" for i, c in enumerate(columns)}
    kinds = {f.name: f.dataType for f in history.schema.fields}
    arrays = _history_arrays(history, targets, entity=entity, values=[F.col(c) for c in columns],
                             time=F.col(timestamp))
    element = StructType([StructField(T, LongType()),
                          *[StructField(field[c], kinds[c]) for c in columns]])
    now = F.col(timestamp).cast("long")
    # Each frame once, as a column (not collapsed into its uses: a filter is no cheap expression).
    frames = {f"__w{i}": _frame(int(w.total_seconds()), now) for i, w in enumerate(group.windows)}
    longest = _frame(int(max(group.windows).total_seconds()), now)
    with_frames = _attach(targets, arrays, entity=entity, element=element).select(
        *[F.col(f"`{c}`") for c in targets.columns], *[f.alias(n) for n, f in frames.items()],
        longest.alias("__longest"))
    features: list[Column] = []
    for i, window in enumerate(group.windows):
        frame = F.col(f"__w{i}")
        if group.count:
            features.append(F.size(frame).cast("long").alias(f"{group_name}_count_{window}"))
        for column, aggs in group.aggs.items():
            for agg in aggs:
                features.append(_fold(agg, frame, field[column], kinds[column])
                                .alias(f"{group_name}_{column}_{agg}_{window}"))
    for column in group.last_value:
        previous = F.try_element_at(_non_null(F.col("__longest"), field[column]), F.lit(-1))[field[column]]
        features.append(previous.alias(f"{group_name}_prev_{column}"))
        features.append(F.when(previous.isNull(), F.lit(None)).otherwise((F.col(column) != previous).cast("int"))
                        .alias(f"{group_name}_{column}_changed"))
    if group.time_since_last:
        features.append((now - F.array_max(F.transform(F.col("__longest"), lambda x: x[T]))).cast("double")
                        .alias(f"{group_name}_seconds_since_last"))
    return with_frames.select(*[F.col(f"`{c}`") for c in targets.columns], *features)


def with_point_label_rate(targets: DataFrame, history: DataFrame, labels: DataFrame, *, name: str,
                          group: LabelRateGroup, source: LabelSource, dataset: DatasetConfig,
                          lookup: DataFrame) -> DataFrame:
    """`targets` plus the label rate's columns, equal to `label_rates.with_label_rate`: the
    entity's events in the frame (from `history`) and the labels reported in it (mapped to
    the entity through `lookup`, every event)."""
    entity, key = list(group.entity), list(dataset.key)
    seconds = int(group.window.total_seconds())
    now = F.col(dataset.event_time).cast("long")
    keyed = labels.select(*[F.col(c).alias(k) for c, k in zip(source.key, key, strict=True)],
                          F.col(source.available_at).cast("long").alias("__at"))
    label_rows = (
        lookup.select(*key, *entity).join(F.broadcast(keyed), on=key, how="inner")
        .select(*entity, F.col("__at").alias(dataset.event_time))
    )
    element = StructType([StructField(T, LongType())])
    frame = _frame(seconds, now)
    out = targets
    for part, rows in (("seen", history.select(*entity, F.col(dataset.event_time).cast("long"))),
                       ("labelled", label_rows)):
        arrays = _history_arrays(rows, targets, entity=entity, values=[], time=F.col(dataset.event_time))
        attached = _attach(out, arrays, entity=entity, element=element)
        extra = [F.size(frame).cast("long").alias(f"__{part}")]
        if part == "labelled":
            extra.append(F.timestamp_seconds(F.array_max(F.transform(frame, lambda x: x[T]))).alias("__known"))
        out = attached.select(*[F.col(f"`{c}`") for c in out.columns], *extra)
    suffix = str(group.window)
    labelled, seen = f"{name}_labels_{suffix}", f"{name}_events_{suffix}"
    rate = (F.col(labelled) + F.lit(group.prior_rate * group.prior_weight)) / (F.col(seen) + F.lit(group.prior_weight))
    return (
        out.withColumnsRenamed({"__labelled": labelled, "__seen": seen, "__known": f"{KNOWN_AS_OF}{name}"})
        .select(*[F.col(f"`{c}`") for c in targets.columns], labelled, seen, f"{KNOWN_AS_OF}{name}")
        .withColumn(f"{name}_rate_{suffix}", rate)
    )

