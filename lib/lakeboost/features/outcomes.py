"""Windows over outcomes that arrive late, each counted from when it became known.

An order's delivery delay is known when it is delivered, days after the order. A mean delay per
warehouse "over the last 7 days", computed when a new order is placed, may only use deliveries
that had happened by then: the outcome rows travel through the entity's window at their
*availability* time, not at their event's time. The events and the outcome rows are one union
ordered by time (one shuffle by entity for all windows of a group, no join back), and each
event aggregates the outcome rows in [t - w, t).

Each group also writes `_known_as_of_<group>`, the latest availability time it counted, which
the training set's leakage audit checks against the example's time.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.features import OutcomeWindowGroup
from lakeboost.features.windows import aggregate

KNOWN_AS_OF = "_known_as_of_"
TIME, IS_OUTCOME = "__known_t", "__is_outcome"


def outcome_availability(group: OutcomeWindowGroup, dataset: DatasetConfig) -> str:
    """The SQL of when the group's outcomes become known (one for all its columns, validated)."""
    outcome = dataset.outcome(next(iter(group.aggs)))
    assert outcome is not None  # checked when the config loads
    return outcome[1]


def known_union(events: DataFrame, outcome_rows: DataFrame, *, timestamp: str) -> DataFrame:
    """`events` (at their own time) and `outcome_rows` (columns `TIME` in seconds plus values)
    in one frame, flagged by `IS_OUTCOME`: windows ordered by `TIME` then see both."""
    own = events.withColumn(TIME, F.col(timestamp).cast("long")).withColumn(IS_OUTCOME, F.lit(0))
    return own.unionByName(outcome_rows.withColumn(IS_OUTCOME, F.lit(1)), allowMissingColumns=True)


def with_outcome_windows(events: DataFrame, source: DataFrame, *, name: str, group: OutcomeWindowGroup,
                         dataset: DatasetConfig) -> DataFrame:
    """Add `<name>_<col>_<agg>_<w>` (and `<name>_known_<w>`) to every event.

    `source` holds the earlier events with their outcomes: the unfiltered events table, so an
    incremental build of a few dates still sees outcomes of older events that became known in
    its windows.
    """
    entity = list(group.entity)
    columns = list(group.aggs)
    # Never known before the event itself happened: a value stamped earlier (a clock skew, a
    # backfill) is counted from its event's time.
    available = F.expr(outcome_availability(group, dataset))
    # (greatest() skips NULLs: an outcome not known yet must stay NULL, not become known at once.)
    known_at = F.when(available.isNotNull(), F.greatest(available, F.col(dataset.event_time)))
    values = []
    for i, column in enumerate(columns):
        expr = dataset.outcome(column)
        assert expr is not None  # checked when the config loads
        value = F.expr(expr[0])
        values.append(value.alias(f"__v{i}"))
    outcome_rows = (
        source.select(*entity, known_at.cast("long").alias(TIME), *values)
        .where(F.col(TIME).isNotNull())  # not known yet: not an outcome of anything
    )
    for i in range(len(columns)):  # a threshold label is a 0/1 outcome
        if outcome_rows.schema[f"__v{i}"].dataType.typeName() == "boolean":
            outcome_rows = outcome_rows.withColumn(f"__v{i}", F.col(f"__v{i}").cast("int"))
    ordered = Window.partitionBy(*entity).orderBy(TIME)
    is_outcome = F.col(IS_OUTCOME) == 1
    features: list[Column] = []
    for window in group.windows:
        frame = ordered.rangeBetween(-int(window.total_seconds()), -1)
        if group.count:
            features.append(F.sum(F.col(IS_OUTCOME)).over(frame).alias(f"{name}_known_{window}"))
        for i, column in enumerate(columns):
            only_outcomes = F.when(is_outcome, F.col(f"__v{i}"))
            for agg in group.aggs[column]:
                features.append(aggregate(agg, only_outcomes, frame).alias(f"{name}_{column}_{agg}_{window}"))
    longest = ordered.rangeBetween(-int(max(group.windows).total_seconds()), -1)
    features.append(F.timestamp_seconds(F.max(F.when(is_outcome, F.col(TIME))).over(longest))
                    .alias(f"{KNOWN_AS_OF}{name}"))
    counted = (
        known_union(events, outcome_rows, timestamp=dataset.event_time)
        .select("*", *features)
        .where(~is_outcome)
        .drop(TIME, IS_OUTCOME, *[f"__v{i}" for i in range(len(columns))])
    )
    if group.count:  # an empty window has 0 outcomes, not NULL
        counted = counted.fillna(0, subset=[f"{name}_known_{w}" for w in group.windows])
    return counted
