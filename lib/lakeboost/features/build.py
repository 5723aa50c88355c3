"""Build gold feature tables incrementally: recompute only the rows a change reaches, and MERGE them.

What changed is read from the Delta change data feed of the inputs since the versions the last
build consumed (kept in `gold.feature_state`, with the digest of the spec the build ran:
`features/spec.py`). A changed row of entity e at time t (its event's time, an outcome's
availability, a label's report) can change the features of e's events in [t, t + w] for a
group of window w: those events, and the changed rows themselves, are recomputed from their
entities' history (`compute.compute_features_at`, equal to the windows bit for bit) and merged
by key in one commit, deleted events deleted. The table keeps deletion vectors on, so a MERGE
writes the rows it changes, not the files that hold them. No state yet, a spec that changed
since (a window, a feature, an outcome's availability), or a feed that no longer covers those
versions, means a full rebuild, which overwrites the table in one commit.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.features import FeatureSetConfig
from lakeboost.config.model import LakeboostConfig
from lakeboost.faults import kill_during_write
from lakeboost.features.compute import compute_features, compute_features_at
from lakeboost.features.label_rates import LabelSource, label_source
from lakeboost.features.outcomes import outcome_availabilities
from lakeboost.features.point import supported as point_supported
from lakeboost.features.spec import feature_spec, spec_changes, spec_digest, spec_text
from lakeboost.io.catalog import TableCatalog
from lakeboost.logs import StepSummary
from lakeboost.progress import Progress
from lakeboost.spark.conf import session_conf
from lakeboost.spark.rows import first_row

log = logging.getLogger(__name__)

DELETE = "__delete"


def reach_days(features: FeatureSetConfig) -> int:
    """How many days after a changed input day its change can show up in features."""
    return math.ceil(features.lookback() / dt.timedelta(days=1))


def input_tables(features: FeatureSetConfig, dataset: DatasetConfig) -> dict[str, list[str]]:
    """Logical input table -> SQL of the times its rows affect features from (for mapping
    changed rows to days): an event's own time, and when its late outcomes became known (a
    delivery recorded 40 days after its order changes the windows of the days after delivery)."""
    inputs = {dataset.events: [f"`{dataset.event_time}`"]}
    for outcome_group in features.outcome_windows.values():
        inputs[dataset.events] += list(outcome_availabilities(outcome_group, dataset))
    for group in features.label_rates.values():
        source = label_source(group, dataset)
        inputs.setdefault(source.table, []).append(f"`{source.available_at}`")
    return {table: list(dict.fromkeys(times)) for table, times in inputs.items()}


def build_features(catalog: TableCatalog, config: LakeboostConfig, names: list[str] | None = None, *,
                   full_rebuild: bool = False) -> StepSummary:
    dataset = config.require_dataset
    summary = StepSummary("features")
    chosen = names or list(config.gold.features)
    with Progress("features", "table", total=len(chosen), lines=False) as progress:  # each logs its own line
        for name in chosen:
            progress.start(name)
            started = time.monotonic()
            result = build_feature_set(catalog, name, config.gold.features[name], dataset, full_rebuild=full_rebuild)
            result["seconds"] = round(time.monotonic() - started, 2)
            summary.details[name] = result
            summary.rows_written += result["rows_written"]
            if result.get("version") is not None:
                summary.versions[f"gold.{name}"] = result["version"]
            progress.done(name)
    return summary


@dataclass(frozen=True)
class LastBuild:
    """What `gold.feature_state` recorded of a feature table's latest build."""

    versions: dict[str, int]  # input table -> the version it read
    spec_digest: str | None  # None: recorded before lakeboost kept the spec
    spec: str | None
    built_version: int | None = None  # the feature table's version after that build


@dataclass(frozen=True)
class Reach:
    """One way a changed input row reaches feature rows: the rows of the same `entity` whose
    time is within `seconds` after a time the change touched (`_touched`'s `__t`)."""

    entity: tuple[str, ...]
    seconds: int
    touched: DataFrame  # entity columns and `__t` (epoch seconds)


@dataclass(frozen=True)
class Changes:
    """What the inputs' change feeds say changed since the last build."""

    reaches: list[Reach]
    changed_keys: DataFrame  # event keys of every changed events row (inserted, updated or deleted)
    first: dt.datetime  # the earliest time a change touched
    last: dt.datetime  # the latest time a changed row's windows reach
    entities: int  # distinct entities touched, over the reaches
    inserts_only: bool  # the events' feed holds inserts only (no update, no delete)
    feeds: list[DataFrame]  # the change feeds, read once and held (unpersist when done)

    def release(self) -> None:
        for feed in self.feeds:
            feed.unpersist()


def build_feature_set(catalog: TableCatalog, name: str, features: FeatureSetConfig, dataset: DatasetConfig, *,
                      full_rebuild: bool = False) -> dict:
    target = f"gold.{name}"
    spec = feature_spec(features, dataset)
    digest = spec_digest(spec)
    versions = {table: catalog.version(table) for table in input_tables(features, dataset)}
    last = None if full_rebuild or not catalog.exists(target) else last_build(catalog, name)
    if last is not None and last.spec_digest != digest:
        _log_spec_change(target, last, spec, digest)
        last = None
    changes = None if last is None else changes_since(catalog, features, dataset, last.versions, versions)
    if changes == "unchanged":
        log.info("%s: inputs and spec unchanged since the last build; nothing to do", target)
        return {"mode": "unchanged", "dates": 0, "rows_written": 0, "version": None, "spec_digest": digest}
    pinned = {table: catalog.read(table, version=v) for table, v in versions.items()}
    labels = {n: pinned[label_source(g, dataset).table] for n, g in features.label_rates.items()}
    if changes is not None and (why := point_supported(features, pinned[dataset.events].schema)) is not None:
        log.info("%s: %s, which incremental builds do not fold; rebuilding it fully", target, why)
        if isinstance(changes, Changes):
            changes.release()
        changes = None
    if isinstance(changes, Changes):
        assert last is not None
        # Appending is safe only onto the table the last build left: a commit since (a build
        # killed between its write and its state, a maintenance job) may hold some of the rows.
        append_txn = (f"lakeboost.features.{name}", last.built_version) \
            if last.built_version is not None and catalog.version(target) == last.built_version else None
        try:
            with _static_plans(catalog.spark, changes.entities <= STATIC_PLAN_ENTITIES):
                result = _merge_changes(catalog, target, features, dataset, changes, pinned, labels, append_txn)
        finally:
            changes.release()
    else:
        computed = compute_features(pinned[dataset.events], features=features, dataset=dataset, labels=labels)
        written = catalog.write(computed, target, mode="overwrite", partition_by=(dataset.date_column,),
                                extra_options={"overwriteSchema": "true"})
        _enable_deletion_vectors(catalog, target)
        result = {"mode": "full", "dates": None, "rows_written": written.rows_written}
    version = catalog.version(target)
    _record_state(catalog, name, versions, version, spec)
    log.info("%s: %s build, %s rows written, version %s", target, result["mode"], result["rows_written"], version)
    return {**result, "version": version, "spec_digest": digest}


def _enable_deletion_vectors(catalog: TableCatalog, target: str) -> None:
    """A MERGE of a few rows then marks the rows it replaces in deletion vectors instead of
    rewriting every file that holds one (Delta's copy-on-write): its cost follows its rows."""
    properties = {r["key"]: r["value"] for r in catalog.spark.sql(f"SHOW TBLPROPERTIES {catalog.sql_ref(target)}")
                  .collect()}  # a table's properties: a few rows of metadata
    if properties.get("delta.enableDeletionVectors") != "true":
        catalog.set_properties(target, {"delta.enableDeletionVectors": "true"})


def _merge_changes(catalog: TableCatalog, target: str, features: FeatureSetConfig, dataset: DatasetConfig,
                   changes: Changes, pinned: dict[str, DataFrame], labels: dict[str, DataFrame],
                   append_txn: tuple[str, int] | None = None) -> dict:
    """Recompute the events the changes reach (their entities' rows up to `reach` after each
    change) from their entities' history, and MERGE them (and the deletions) into the table.

    When every recomputed row is an event the feed inserted (a new day: only inserts, and no
    older event within their windows' reach) and `append_txn` is given (the table is as the
    last build left it), the rows are appended instead: no join with the table, no rewrite.
    The append carries Delta's idempotent transaction id `append_txn`, so a concurrent build
    of the same changes cannot add them twice."""
    events, key, date = pinned[dataset.events], list(dataset.key), dataset.date_column
    seconds = F.col(dataset.event_time).cast("long")
    first_day, last_day = changes.first.date(), changes.last.date()
    since = first_day - dt.timedelta(days=reach_days(features))
    # Literal date bounds: Delta reads only those partitions (or files, by their statistics).
    window_rows = events.filter(F.col(date).between(F.lit(since), F.lit(last_day)))
    custom_lookback = any(c.lookback is not None for c in features.custom)
    if custom_lookback:  # a custom function may read any column of the history
        history = window_rows
    else:
        # The history the changes' windows reach, read once and held (the columns the features
        # read): the targets and every group's and label rate's arrays come from it. An events
        # table not partitioned by date is otherwise scanned whole once for each of them.
        history = window_rows.select(*dict.fromkeys(
            [*key, dataset.event_time, date, *features.entities(), *features.passthrough,
             *[c for g in features.groups.values() for c in (*g.aggs, *g.last_value)]])).localCheckpoint()
    reached = history.filter(F.col(date).between(F.lit(first_day), F.lit(last_day)))
    hits = [changes.changed_keys.select(*key)]
    for reach in changes.reaches:
        spans = reach.touched.groupBy(*reach.entity).agg(F.min("__t").alias("__lo"), F.max("__t").alias("__hi"))
        same = [F.col(f"e.`{c}`").eqNullSafe(F.col(f"s.`{c}`")) for c in reach.entity]
        within = (seconds >= F.col("s.__lo")) & (seconds <= F.col("s.__hi") + F.lit(reach.seconds))
        hits.append(reached.alias("e").join(spans.alias("s"), on=reduce(lambda a, b: a & b, same) & within,
                                            how="inner").select(*[F.col(f"e.`{k}`") for k in key]))
    affected = reduce(DataFrame.unionByName, hits).distinct()
    # Computed once (a few rows per change), and a short plan for the joins that read them.
    targets = reached.join(affected, on=key, how="left_semi").localCheckpoint()
    try:
        return _write_changes(catalog, target, features, dataset, changes, targets, history, events, labels,
                              append_txn, custom_lookback, (first_day, last_day))
    finally:
        targets.unpersist()  # the checkpoints' blocks
        history.unpersist()


def _write_changes(catalog: TableCatalog, target: str, features: FeatureSetConfig, dataset: DatasetConfig,
                   changes: Changes, targets: DataFrame, history: DataFrame, events: DataFrame,
                   labels: dict[str, DataFrame], append_txn: tuple[str, int] | None, custom_lookback: bool,
                   days: tuple[dt.date, dt.date]) -> dict:
    """Compute the targets' rows, then append them (a new day) or MERGE them (with the deletions)."""
    key, date = list(dataset.key), dataset.date_column
    first_day, last_day = days
    # One small action: the dates and rows to recompute, and how many were there before.
    inserted = changes.changed_keys.select(*key, F.lit(True).alias("__inserted")).distinct()
    dates, count, older = first_row(targets.join(inserted, on=key, how="left").agg(
        F.countDistinct(date), F.count(F.lit(1)), F.count_if(F.col("__inserted").isNull())))
    if custom_lookback:
        # A custom function that reads other events needs their rows: windows over the
        # history (what reaches the targets), then the targets' rows.
        computed = (compute_features(history, features=features, dataset=dataset, labels=labels, lookup=events)
                    .join(targets.select(*key), on=key, how="left_semi"))
    else:
        computed = compute_features_at(targets, history, features=features, dataset=dataset, labels=labels,
                                       lookup=events, first=changes.first)
    if append_txn is not None and changes.inserts_only and older == 0:
        fields = catalog.read(target).schema.fields
        with kill_during_write("features.during_replace", catalog.path(target)):
            appended = catalog.write(computed.select(*[F.col(f"`{f.name}`").cast(f.dataType) for f in fields]),
                                     target, txn=append_txn)
        return {"mode": "incremental", "write": "append", "dates": int(dates), "rows_recomputed": int(count),
                "rows_written": appended.rows_written, "entities": changes.entities,
                "rows_deleted": 0, "rows_copied": 0}
    deleted = changes.changed_keys.select(*key).distinct().join(targets.select(*key), on=key, how="left_anti")
    source = computed.withColumn(DELETE, F.lit(False)).unionByName(
        deleted.withColumn(DELETE, F.lit(True)), allowMissingColumns=True)
    columns = [c for c in computed.columns]
    on = " AND ".join([f"t.`{k}` = s.`{k}`" for k in key]
                      + [f"t.`{date}` BETWEEN DATE'{first_day}' AND DATE'{last_day}'"])

    def statement(table: str, view: str) -> str:
        return (f"MERGE INTO {table} AS t USING {view} AS s ON {on} "
                f"WHEN MATCHED AND s.{DELETE} THEN DELETE "
                f"WHEN MATCHED THEN UPDATE SET {', '.join(f't.`{c}` = s.`{c}`' for c in columns)} "
                f"WHEN NOT MATCHED AND NOT s.{DELETE} THEN INSERT ({', '.join(f'`{c}`' for c in columns)}) "
                f"VALUES ({', '.join(f's.`{c}`' for c in columns)})")

    with kill_during_write("features.during_replace", catalog.path(target)):
        catalog.run_retrying(target, "MERGE of recomputed feature rows",
                             lambda: catalog.merge_sql(target, source, statement))
    merged = catalog.last_commit(target)
    metrics = merged.metrics
    return {"mode": "incremental", "write": "merge", "dates": int(dates), "rows_recomputed": int(count),
            "rows_written": merged.rows_written, "entities": changes.entities,
            "rows_deleted": int(metrics.get("numTargetRowsDeleted", 0)),
            "rows_copied": int(metrics.get("numTargetRowsCopied", 0))}


# Up to this many entities touched, an incremental build computes and merges its rows without
# adaptive query execution: AQE runs each shuffle and broadcast of the joins as a Spark job of
# its own and re-plans after each, a fixed cost that dominated small builds (small lake of the
# property test: 65-74 Spark jobs an incremental build with AQE, 46-54 without). A new day of
# the 1M-row bench touches 6,855 entities.
# Above it, AQE's runtime choices (broadcasts, coalesced partitions) pay for themselves.
STATIC_PLAN_ENTITIES = 100_000


def _static_plans(spark: SparkSession, on: bool) -> AbstractContextManager[None]:
    """Adaptive query execution off for the block when `on` (restored after it)."""
    return session_conf({"spark.sql.adaptive.enabled": "false"} if on else {}, spark)


def _log_spec_change(target: str, last: LastBuild, spec: dict, digest: str) -> None:
    if last.spec_digest is None:
        log.info("%s: its last build recorded no spec (an older lakeboost built it); rebuilding it fully", target)
        return
    changed = spec_changes(json.loads(last.spec), spec) if last.spec else []
    log.info("%s: the spec of gold.features.%s changed since its last build (%s; digest %s -> %s); "
             "rebuilding it fully", target, target.removeprefix("gold."), ", ".join(changed) or "spec",
             last.spec_digest, digest)


def changes_since(catalog: TableCatalog, features: FeatureSetConfig, dataset: DatasetConfig,
                  consumed: dict[str, int], current: dict[str, int | None]) -> Changes | str | None:
    """What changed in the inputs since the versions `consumed`: `Changes`, "unchanged", or
    None when only a full rebuild is safe (a table without state, or whose change feed is off
    or no longer covers those versions).

    Each input's feed is read once (a Spark job each, its rows held: a few per change) and every
    reach, the bounds and the targets read it from there, with static plans: the data is small."""
    ranges: dict[str, tuple[int, int]] = {}
    for table in input_tables(features, dataset):
        start, end = consumed.get(table), current.get(table)
        if start is None or end is None:
            return None
        if end > start:
            ranges[table] = (start + 1, end)
    if not ranges:
        return "unchanged"
    feeds: dict[str, DataFrame] = {}
    try:
        for table, (start, end) in ranges.items():
            feeds[table] = catalog.read_changes(table, start, end).localCheckpoint()
    except Exception as exc:  # feed disabled, or its versions vacuumed: errors surface on read
        for feed in feeds.values():
            feed.unpersist()
        log.warning("no change feed for %s (%s); rebuilding fully", ", ".join(ranges), str(exc).splitlines()[0])
        return None
    try:
        with _static_plans(catalog.spark, True):
            return _changes(catalog, features, dataset, feeds, current)
    except BaseException:
        for feed in feeds.values():
            feed.unpersist()
        raise


def _changes(catalog: TableCatalog, features: FeatureSetConfig, dataset: DatasetConfig, feeds: dict[str, DataFrame],
             current: dict[str, int | None]) -> Changes | str:
    events = catalog.read(dataset.events, version=current[dataset.events])
    key = list(dataset.key)
    changed = feeds.get(dataset.events, events.limit(0).withColumn("_change_type", F.lit("insert")))
    change_types = changed.select("_change_type")
    changed = changed.select(*events.columns)
    # Reaches of one entity are one: the longest window from every time touched (a range join
    # each, not one per window kind; the rows they reach are a superset of each kind's).
    by_entity: dict[tuple[str, ...], tuple[int, list[DataFrame]]] = {}

    def add(entity: tuple[str, ...] | list[str], window: dt.timedelta, parts: list[DataFrame]) -> None:
        seconds, before = by_entity.get(tuple(entity), (0, []))
        by_entity[tuple(entity)] = (max(seconds, int(window.total_seconds())), before + parts)

    for group in features.groups.values():
        add(group.entity, max(group.windows), [
            changed.select(*group.entity, F.col(dataset.event_time).cast("long").alias("__t"))])
    for outcome_group in features.outcome_windows.values():
        add(outcome_group.entity, max(outcome_group.windows), [
            changed.select(*outcome_group.entity, F.col(dataset.event_time).cast("long").alias("__t")),
            *[changed.select(*outcome_group.entity, F.expr(availability).cast("long").alias("__t"))
              .where(F.col("__t").isNotNull()) for availability in outcome_availabilities(outcome_group, dataset)]])
    # A changed event (its value, its availability, or the event itself) reaches its entity's
    # events up to the longest lag / `within` after its own time, and none before it.
    for lagged, reach in [*[(g.entity, g.longest()) for g in features.lags.values()],
                          *[(g.entity, g.within) for g in features.previous.values()]]:
        add(lagged, reach, [changed.select(*lagged, F.col(dataset.event_time).cast("long").alias("__t"))])
    for rate in features.label_rates.values():
        source = label_source(rate, dataset)
        entity = list(rate.entity)
        label_table = catalog.read(source.table, version=current[source.table])

        def reports(labels: DataFrame, src: LabelSource = source) -> DataFrame:
            return labels.select(*[F.col(c).alias(k) for c, k in zip(src.key, key, strict=True)],
                                 F.col(src.available_at).cast("long").alias("__t"))

        label_rows = reports(label_table)
        label_changes = None
        if source.table in feeds:
            label_changes = reports(feeds[source.table])
            label_rows = label_rows.unionByName(label_changes)
        parts = [changed.select(*entity, F.col(dataset.event_time).cast("long").alias("__t")),
                 # A changed event moves its labels: its old and new entity, from their report.
                 changed.select(*key, *entity).join(label_rows, on=key, how="inner").select(*entity, "__t")]
        if label_changes is not None:  # a label reported or retracted: its event's entity
            owners = events.select(*key, *entity).unionByName(changed.select(*key, *entity))
            parts.append(label_changes.join(owners, on=key, how="inner").select(*entity, "__t"))
        add(rate.entity, rate.window, parts)
    reaches = [Reach(entity, seconds, reduce(DataFrame.unionByName, parts))
               for entity, (seconds, parts) in by_entity.items()]
    # One small action: the span of times the changes touch, how many entities, and whether
    # the events' feed holds anything but inserts.
    bounds = reduce(DataFrame.unionByName, [
        r.touched.agg(F.min("__t").alias("lo"), (F.max("__t") + F.lit(r.seconds)).alias("hi"),
                      F.count_distinct(*[F.col(f"`{c}`") for c in r.entity]).alias("n"))
        for r in reaches] or [changed.agg(F.min(F.col(dataset.event_time).cast("long")).alias("lo"),
                                           F.max(F.col(dataset.event_time).cast("long")).alias("hi"),
                                           F.lit(0).cast("long").alias("n"))])
    lo, hi, n, others = first_row(bounds.agg(F.min("lo"), F.max("hi"), F.sum("n")).crossJoin(
        change_types.agg(F.count_if(F.col("_change_type") != F.lit("insert")))))
    if lo is None:
        for feed in feeds.values():
            feed.unpersist()
        return "unchanged"
    to_time = catalog.spark.conf.get("spark.sql.session.timeZone")
    return Changes(reaches, changed.select(*key), _local(lo, to_time), _local(hi, to_time), int(n or 0),
                   inserts_only=int(others or 0) == 0, feeds=list(feeds.values()))


def _local(seconds: int, zone: str | None) -> dt.datetime:
    """Epoch seconds as the session's wall-clock time (what `to_date` of a timestamp gives)."""
    from zoneinfo import ZoneInfo

    return dt.datetime.fromtimestamp(int(seconds), ZoneInfo(zone or "UTC")).replace(tzinfo=None)


def last_build(catalog: TableCatalog, name: str) -> LastBuild | None:
    """The latest build `gold.feature_state` recorded for the feature set (latest by when it
    was recorded: a table dropped and built again starts its versions at 0), or None."""
    if not catalog.exists(catalog.tables.feature_state):
        return None
    state = catalog.read(catalog.tables.feature_state).filter(F.col("feature_set") == name)
    recorded = [F.col(c) if c in state.columns else F.lit(None).cast("string")
                for c in ("spec_digest", "spec")]
    with _static_plans(catalog.spark, True):  # a few rows per build: no stage worth re-planning
        builds = (
            state.groupBy("built_at", "built_version")
            .agg(F.map_from_entries(F.collect_list(F.struct("input", "input_version"))).alias("versions"),
                 *[F.first(c).alias(n) for c, n in zip(recorded, ("spec_digest", "spec"), strict=True)])
            .orderBy(F.col("built_at").desc(), F.col("built_version").desc())
            .limit(1).collect()
        )
    if not builds:
        return None
    build = builds[0]
    return LastBuild({t: int(v) for t, v in build["versions"].items()}, build["spec_digest"], build["spec"],
                     None if build["built_version"] is None else int(build["built_version"]))


def _record_state(catalog: TableCatalog, name: str, versions: dict[str, int | None], built: int | None,
                  spec: dict) -> None:
    if built is None:
        return
    digest, text = spec_digest(spec), spec_text(spec)
    rows = [(name, table, int(v), int(built), digest, text) for table, v in versions.items() if v is not None]
    state = catalog.spark.createDataFrame(rows, "feature_set string, input string, input_version bigint, "
                                                "built_version bigint, spec_digest string, spec string")
    # mergeSchema: a state table from before the spec was recorded gains its two columns.
    # One file a build (a few rows), not one per default partition.
    catalog.write(state.withColumn("built_at", F.current_timestamp()).coalesce(1), catalog.tables.feature_state,
                  merge_schema=True)
