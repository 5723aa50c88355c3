"""Lags (the entity's value a period back) and previous events, each value used only once known.

A lag `k` of an event at time t is the value of the entity's event at exactly t - k (by the
second): an hourly series' count 1h, 24h or 168h before. `previous` is the value of the
entity's i-th event strictly before t (events at the same second are not previous), at most
`within` back. Either value is NULL unless it was known at t: a plain column from its event's
time (always, as its event was earlier), a late-arriving one (`dataset.outcomes`, a value
label's column) from its own availability time, before t (`known: before`) or at t at the latest
(`known: at_or_before`). The choice is made first, then masked: the event at t - k, or the i-th
previous event, whose value is not known yet gives NULL, not an older one's value.

As outcome windows do (`outcomes.py`), the events to compute and the source rows (the earlier
events, from the unfiltered table in incremental builds) are one union, partitioned by entity
(one shuffle a group, no join back). Source rows carry one struct of their key, time, values and
availability times; event rows carry none:
- lags read a frame `rangeBetween(-k, -k)` over event seconds (the rows at exactly t - k, one
  sort for every lag of the group), taking the struct of the greatest key there (`max_by`);
- previous reads `lag(struct, i) IGNORE NULLS` ordered by (seconds, event rows first, key):
  the i-th source row before the event in that order is its i-th previous event, as source rows
  at its own second sort after it.

Each group also writes `known_column(group, known)`, the latest availability time of a value
it used, which the training set's leakage audit checks against the example's time.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType

from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.features import Known, LagGroup, PreviousGroup
from lakeboost.errors import ConfigError
from lakeboost.features.outcomes import known_column

SECONDS, IS_SOURCE, ROW = "__lag_t", "__lag_source", "__lag_row"


def lag_columns(name: str, group: LagGroup) -> list[str]:
    """The feature columns of a lag group, in the order they are added."""
    return [f"{name}_{column}_lag_{k}" for column, lags in group.columns.items() for k in lags]


def previous_columns(name: str, group: PreviousGroup) -> list[str]:
    """The feature columns of a previous group, in the order they are added."""
    return [f"{name}_{column}_prev{i}" for column in group.columns for i in range(1, group.n + 1)]


def _value_and_known(column: str, dataset: DatasetConfig) -> tuple[Column, Column]:
    """(value, when it becomes known) of a column of an earlier event."""
    outcome = dataset.outcome(column)
    if outcome is None:  # a plain column: known when its event happened
        return F.col(column), F.col(dataset.event_time)
    return F.expr(outcome[0]), F.expr(outcome[1]).cast("timestamp")


def _source_rows(source: DataFrame, *, entity: list[str], columns: list[str], dataset: DatasetConfig,
                 where: str) -> DataFrame:
    """The entity, event seconds and `ROW`: struct(key fields, `t`, `v<i>`, `a<i>` availability)."""
    missing = [c for c in columns if dataset.outcome(c) is None and c not in source.columns]
    if missing:  # (checked when the config loads where it declares the events' columns)
        raise ConfigError(f"gold.features.*.{where}.columns: {missing} are neither columns of {dataset.events} "
                          f"({sorted(source.columns)}) nor late-arriving outcomes (dataset.outcomes)")
    fields: list[Column] = [F.struct(*[F.col(k) for k in dataset.key]).alias("k"),
                            F.col(dataset.event_time).cast("long").alias("t")]
    for i, column in enumerate(columns):
        value, known = _value_and_known(column, dataset)
        fields += [value.alias(f"v{i}"), known.alias(f"a{i}")]
    rows = source.select(*entity, F.col(dataset.event_time).cast("long").alias(SECONDS),
                         F.struct(*fields).alias(ROW), F.lit(1).alias(IS_SOURCE))
    booleans = [f"v{i}" for i in range(len(columns))
                if isinstance(rows.schema[ROW].dataType[f"v{i}"].dataType, BooleanType)]  # type: ignore[index]
    for field in booleans:  # a threshold label is a 0/1 outcome
        rows = rows.withColumn(ROW, F.col(ROW).withField(field, F.col(f"{ROW}.{field}").cast("int")))
    return rows


def _union(events: DataFrame, rows: DataFrame, *, timestamp: str) -> DataFrame:
    own = events.withColumn(SECONDS, F.col(timestamp).cast("long")).withColumn(IS_SOURCE, F.lit(0))
    return own.unionByName(rows, allowMissingColumns=True)


def _known(at: Column, timestamp: str, known: Known) -> Column:
    """Whether a value that becomes known `at` may be used by the event at `timestamp`."""
    return at <= F.col(timestamp) if known == "at_or_before" else at < F.col(timestamp)


def with_lags(events: DataFrame, source: DataFrame, *, name: str, group: LagGroup,
              dataset: DatasetConfig) -> DataFrame:
    """Add `<name>_<col>_lag_<k>` and the group's known-as-of column to every event.

    `source` holds the earlier events (the unfiltered events table in incremental builds)."""
    entity, columns = list(group.entity), list(group.columns)
    ordered = Window.partitionBy(*entity).orderBy(SECONDS)
    # Several events at t - k: the greatest key's (event rows have no ROW and are skipped).
    picked = {k: F.max_by(F.col(ROW), F.col(f"{ROW}.k")).over(ordered.rangeBetween(-int(k.total_seconds()),
                                                                                    -int(k.total_seconds())))
              for k in dict.fromkeys(k for lags in group.columns.values() for k in lags)}
    at = {k: f"__lag_at_{int(k.total_seconds())}" for k in picked}
    union = _union(events, _source_rows(source, entity=entity, columns=columns, dataset=dataset,
                                        where=f"lags.{name}"), timestamp=dataset.event_time)
    framed = union.select("*", *[row.alias(at[k]) for k, row in picked.items()]).where(F.col(IS_SOURCE) == 0)
    features, used = [], []
    for i, column in enumerate(columns):
        for k in group.columns[column]:
            available = F.col(f"{at[k]}.a{i}")
            usable = _known(available, dataset.event_time, group.known)
            features.append(F.when(usable, F.col(f"{at[k]}.v{i}")).alias(f"{name}_{column}_lag_{k}"))
            used.append(F.when(usable, available))
    as_of = (F.greatest(*used) if len(used) > 1 else used[0]).alias(known_column(name, group.known))
    return framed.select(*events.columns, *features, as_of)


def with_previous(events: DataFrame, source: DataFrame, *, name: str, group: PreviousGroup,
                  dataset: DatasetConfig) -> DataFrame:
    """Add `<name>_<col>_prev<i>` (i = 1..n) and the group's known-as-of column to every event.

    `source` holds the earlier events (the unfiltered events table in incremental builds)."""
    entity, columns = list(group.entity), list(group.columns)
    quoted = ", ".join(f"`{c.replace('`', '``')}`" for c in entity)
    # Event rows before source rows at the same second: a source row at t is not previous to t.
    order = f"`{SECONDS}`, `{IS_SOURCE}`, `{ROW}`.`k`"
    # (lag ... IGNORE NULLS has no DataFrame spelling: event rows' ROW is NULL, so the i-th
    # non-NULL row back is the i-th source row back.)
    window = f"OVER (PARTITION BY {quoted} ORDER BY {order})"
    at = [f"__prev_at_{i}" for i in range(1, group.n + 1)]
    union = _union(events, _source_rows(source, entity=entity, columns=columns, dataset=dataset,
                                        where=f"previous.{name}"), timestamp=dataset.event_time)
    framed = (union.select("*", *[F.expr(f"lag(`{ROW}`, {i}) IGNORE NULLS {window}").alias(at[i - 1])
                                  for i in range(1, group.n + 1)])
              .where(F.col(IS_SOURCE) == 0))
    since = F.col(dataset.event_time).cast("long") - F.lit(int(group.within.total_seconds()))
    features, used = [], []
    for j, column in enumerate(columns):
        for i in range(1, group.n + 1):
            row = at[i - 1]
            available = F.col(f"{row}.a{j}")
            usable = (F.col(f"{row}.t") >= since) & _known(available, dataset.event_time, group.known)
            features.append(F.when(usable, F.col(f"{row}.v{j}")).alias(f"{name}_{column}_prev{i}"))
            used.append(F.when(usable, available))
    as_of = (F.greatest(*used) if len(used) > 1 else used[0]).alias(known_column(name, group.known))
    return framed.select(*events.columns, *features, as_of)
