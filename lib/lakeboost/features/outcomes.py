"""Windows over outcomes that arrive late, each counted from when it became known.

An order's delivery delay is known when it is delivered, days after the order. A mean delay per
warehouse "over the last 7 days", computed when a new order is placed, may only use deliveries
that had happened by then: the outcome rows travel through the entity's window at their
*availability* time, not at their event's time. The events and the outcome rows are one union
ordered by time (one shuffle by entity for all windows of a group, no join back), and each
event aggregates the outcome rows in [t - w, t) (`known: before`) or (t - w, t]
(`known: at_or_before`): w seconds either way. Each column has its own availability time: the union holds one outcome
row per event and availability time.

`pending` (how many of the window's events had no known outcome at t) is a running count over
the same union: an event is pending at t when ev < t <= min(ev + w, last second it is unknown),
so it adds +1 at its event time and -1 at that end, and a running sum up to t - 1 counts the
open intervals exactly, in one growing frame (no frame per event, no join).

An event never sees its own outcome. Counted from its event time at the earliest
(`not_before_event`, the default) and strictly before t, it never falls in its own frame;
otherwise (`at_or_before`, or outcomes counted from a stamp before their event) the events
whose own outcome falls in their own frame are recomputed without it, by key, in a join of
those few events with their entity's outcome rows.

Each group also writes `_known_as_of_<group>` (`_known_at_or_before_<group>`), the latest
availability time it counted, which the training set's leakage audit checks against the
example's time: its prefix tells the audit which bound holds.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, DataType, IntegerType

from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.features import Known, OutcomeWindowGroup
from lakeboost.features.windows import aggregate

KNOWN_AS_OF, KNOWN_AT_OR_BEFORE = "_known_as_of_", "_known_at_or_before_"
TIME, IS_OUTCOME = "__known_t", "__is_outcome"
EVENT, OUTCOME, PENDING = 0, 1, 2  # the kinds of row in the union (IS_OUTCOME)
SELF = "__self"


def known_column(name: str, known: Known) -> str:
    """The column of the latest availability time group `name` counted; its prefix is its bound."""
    return f"{KNOWN_AT_OR_BEFORE if known == 'at_or_before' else KNOWN_AS_OF}{name}"


def outcome_availabilities(group: OutcomeWindowGroup, dataset: DatasetConfig) -> dict[str, list[str]]:
    """Availability SQL -> the group's columns that become known then (in the group's order)."""
    by_time: dict[str, list[str]] = {}
    for column in group.aggs:
        outcome = dataset.outcome(column)
        assert outcome is not None  # checked when the config loads
        by_time.setdefault(outcome[1], []).append(column)
    return by_time


def known_union(events: DataFrame, outcome_rows: DataFrame, *, timestamp: str) -> DataFrame:
    """`events` (at their own time) and `outcome_rows` (columns `TIME` in seconds plus values)
    in one frame, flagged by `IS_OUTCOME`: windows ordered by `TIME` then see both."""
    own = events.withColumn(TIME, F.col(timestamp).cast("long")).withColumn(IS_OUTCOME, F.lit(EVENT))
    if IS_OUTCOME not in outcome_rows.columns:
        outcome_rows = outcome_rows.withColumn(IS_OUTCOME, F.lit(OUTCOME))
    return own.unionByName(outcome_rows, allowMissingColumns=True)


def _frame_end(known: Known) -> int:
    """The frame's upper bound in seconds from t: the last second whose outcomes are usable."""
    return 0 if known == "at_or_before" else -1


def _reach(window_seconds: int, known: Known) -> int:
    """How far back from t the frame starts: a window of w seconds, [t - w, t - 1] (`before`)
    or [t - w + 1, t] (`at_or_before`: on an hourly series a 3h window holds the last 3 hours)."""
    return window_seconds - 1 - _frame_end(known)


def with_outcome_windows(events: DataFrame, source: DataFrame, *, name: str, group: OutcomeWindowGroup,
                         dataset: DatasetConfig) -> DataFrame:
    """Add `<name>_<col>_<agg>_<w>` (and `<name>_known_<w>`) to every event.

    `source` holds the earlier events with their outcomes: the unfiltered events table, so an
    incremental build of a few dates still sees outcomes of older events that became known in
    its windows.
    """
    entity, key = list(group.entity), list(dataset.key)
    columns = list(group.aggs)
    field = {column: f"__v{i}" for i, column in enumerate(columns)}
    values = {column: F.expr(dataset.outcome(column)[0]) for column in columns}  # type: ignore[index]
    kinds = dict(zip(columns, [f.dataType for f in source.select(*values.values()).schema.fields], strict=True))
    for column, kind in kinds.items():  # a threshold label is a 0/1 outcome
        if isinstance(kind, BooleanType):
            values[column], kinds[column] = values[column].cast("int"), IntegerType()
    event_seconds = F.col(dataset.event_time).cast("long")

    def known_at(availability: str) -> Column:
        available = F.expr(availability)
        if group.not_before_event:  # a value stamped earlier (a clock skew, a backfill) counts from its event
            # (greatest() skips NULLs: an outcome not known yet must stay NULL, not become known at once.)
            available = F.when(available.isNotNull(), F.greatest(available, F.col(dataset.event_time)))
        return available.cast("long")

    end = _frame_end(group.known)
    longest = _reach(int(max(group.windows).total_seconds()), group.known)
    # The source's rows, one per event and kind: its outcomes (one row per availability time) and
    # its pending interval's two ends (per pending column and window).
    rows: list[dict[str, Column]] = []
    for availability, known_columns in outcome_availabilities(group, dataset).items():
        at = known_at(availability)
        rows.append(_row(OUTCOME, at, {field[c]: values[c] for c in known_columns},
                         self_visible=(at >= event_seconds - F.lit(longest)) & (at <= event_seconds + F.lit(end))))
    pending = [(c, i, w) for c in columns if "pending" in group.aggs[c] for i, w in enumerate(group.windows)]
    for column, i, window in pending:
        # Pending at t while ev < t <= last: `last` is the window's end or the last second unknown.
        known = known_at(dataset.outcome(column)[1])  # type: ignore[index]
        # Unknown at t while t <= k (`before`) or t <= k - 1 (`at_or_before`); least() skips a NULL k.
        last = F.least(event_seconds + F.lit(int(window.total_seconds())), known - F.lit(1 + end))
        opens = last > event_seconds
        delta = f"__p_{field[column]}_{i}"
        rows.append(_row(PENDING, event_seconds, {delta: F.when(opens, 1).otherwise(0)}))
        rows.append(_row(PENDING, F.when(opens, last), {delta: F.lit(-1)}))
    deltas = [f"__p_{field[c]}_{i}" for c, i, _ in pending]
    row_fields = [IS_OUTCOME, TIME, SELF, *field.values(), *deltas]
    structs = [_widen(r, row_fields, field, kinds, deltas) for r in rows]
    ids: list[Column | str] = [*entity, *[F.col(k).alias(f"__k{j}") for j, k in enumerate(key)],
                               event_seconds.alias("__ev")]
    # One row per source row in the common case (one availability, no pending): no generator.
    exploded = (
        (source.select(*ids, structs[0].alias("__r")).select("*", "__r.*").drop("__r") if len(structs) == 1
         else source.select(*ids, F.inline(F.array(*structs))))
        .where(F.col(TIME).isNotNull())  # not known yet: not an outcome of anything
    )
    outcome_rows = exploded.drop("__ev", *[f"__k{j}" for j in range(len(key))])
    ordered = Window.partitionBy(*entity).orderBy(TIME)
    is_outcome = F.col(IS_OUTCOME) == OUTCOME
    features: list[Column] = []
    for i, window in enumerate(group.windows):
        frame = ordered.rangeBetween(-_reach(int(window.total_seconds()), group.known), end)
        features += _window_columns(name, group, window, i, field, frame, is_outcome)
    running = ordered.rangeBetween(Window.unboundedPreceding, -1)
    for column, i, window in pending:
        features.append(F.coalesce(F.sum(F.col(f"__p_{field[column]}_{i}")).over(running), F.lit(0)).cast("long")
                        .alias(f"{name}_{column}_pending_{window}"))
    as_of = known_column(name, group.known)
    features.append(F.timestamp_seconds(F.max(F.when(is_outcome, F.col(TIME))).over(
        ordered.rangeBetween(-longest, end))).alias(as_of))
    counted = (
        known_union(events, outcome_rows, timestamp=dataset.event_time)
        .select("*", *features)
        .where(F.col(IS_OUTCOME) == EVENT)
        .drop(TIME, IS_OUTCOME, SELF, *field.values(), *deltas)
    )
    if group.known == "at_or_before" or not group.not_before_event:
        counted = _without_own_outcomes(counted, exploded, name=name, group=group, field=field, key=key)
    zero = [f"{name}_known_{w}" for w in group.windows] if group.count else []
    return counted.fillna(0, subset=zero) if zero else counted  # an empty window has 0 outcomes, not NULL


def _row(kind: int, time: Column, values: dict[str, Column], *,
         self_visible: Column | None = None) -> dict[str, Column]:
    """One row of the union, as named parts (widened to every field by `_widen`)."""
    return {IS_OUTCOME: F.lit(kind), TIME: time, SELF: self_visible if self_visible is not None else F.lit(False),
            **values}


def _widen(parts: dict[str, Column], names: list[str], field: dict[str, str], kinds: dict[str, DataType],
           deltas: list[str]) -> Column:
    """A struct of every field of the union's rows, NULL where this row has no value."""
    types = {field[c]: kinds[c] for c in field} | {d: IntegerType() for d in deltas}
    return F.struct(*[(parts[n] if n in parts else F.lit(None).cast(types[n])).alias(n) for n in names])


def _window_columns(name: str, group: OutcomeWindowGroup, window: object, i: int, field: dict[str, str],
                    frame: object, is_outcome: Column) -> list[Column]:
    """The window's count and aggregates over the outcome rows of `frame`."""
    columns: list[Column] = []
    if group.count:
        columns.append(F.count(F.when(is_outcome, 1)).over(frame).alias(f"{name}_known_{window}"))  # type: ignore[arg-type]
    for column, aggs in group.aggs.items():
        only_outcomes = F.when(is_outcome, F.col(field[column]))
        columns += [aggregate(agg, only_outcomes, frame).alias(f"{name}_{column}_{agg}_{window}")  # type: ignore[arg-type]
                    for agg in aggs if agg != "pending"]
    return columns


def _without_own_outcomes(counted: DataFrame, rows: DataFrame, *, name: str, group: OutcomeWindowGroup,
                          field: dict[str, str], key: list[str]) -> DataFrame:
    """`counted` with the window columns of each event whose own outcome fell in its own frame
    recomputed without it: those events' frames are joined to their entity's outcome rows, all
    but their own. Few events (outcomes known at or before their own event), so a small join."""
    entity, keys = list(group.entity), [f"__k{j}" for j in range(len(key))]
    outcomes = rows.where(F.col(IS_OUTCOME) == OUTCOME)
    end = _frame_end(group.known)
    longest = _reach(int(max(group.windows).total_seconds()), group.known)
    own = outcomes.where(F.col(SELF)).select(*entity, *keys, F.col("__ev").alias("__t")).distinct()
    same_entity = [F.col(f"b.{e}").eqNullSafe(F.col(f"o.{e}")) for e in entity]
    other_event = ~reduce(lambda a, b: a & b, [F.col(f"b.{k}").eqNullSafe(F.col(f"o.{k}")) for k in keys])
    seen = F.col(f"o.{TIME}")
    in_reach = (seen >= F.col("b.__t") - F.lit(longest)) & (seen <= F.col("b.__t") + F.lit(end))
    pairs = own.alias("b").join(outcomes.alias("o"), on=reduce(lambda a, b: a & b, same_entity) & other_event
                                & in_reach, how="left")
    is_outcome = F.col(f"o.{IS_OUTCOME}").isNotNull()
    columns: list[Column] = []
    for window in group.windows:
        reach = _reach(int(window.total_seconds()), group.known)
        inside = is_outcome & (F.col(f"o.{TIME}") >= F.col("b.__t") - F.lit(reach))
        if group.count:
            columns.append(F.count(F.when(inside, 1)).alias(f"{name}_known_{window}"))
        for column, aggs in group.aggs.items():
            only = F.when(inside, F.col(f"o.{field[column]}"))
            columns += [aggregate(agg, only, None).alias(f"{name}_{column}_{agg}_{window}")
                        for agg in aggs if agg != "pending"]
    as_of = known_column(name, group.known)
    columns.append(F.timestamp_seconds(F.max(F.when(is_outcome, F.col(f"o.{TIME}")))).alias(as_of))
    fixed = pairs.groupBy(*[F.col(f"b.{k}").alias(k) for k in keys]).agg(*columns).withColumn("__own", F.lit(True))
    names = [f.name for f in fixed.schema.fields if f.name not in (*keys, "__own")]
    joined = counted.alias("c").join(fixed.alias("f"), on=reduce(
        lambda a, b: a & b, [F.col(f"c.`{c}`") == F.col(f"f.{k}") for c, k in zip(key, keys, strict=True)]), how="left")
    return joined.select(*[
        (F.when(F.col("f.__own"), F.col(f"f.`{c}`")).otherwise(F.col(f"c.`{c}`")) if c in names else F.col(f"c.`{c}`"))
        .alias(c) for c in counted.columns])
