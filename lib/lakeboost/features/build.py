"""Build gold feature tables incrementally: recompute only the dates whose inputs changed.

A changed source row on day d can change the features of events on days d .. d + reach,
where reach is the longest window (a late record on day 5 with a 30-day window touches days
5..35). Those dates are recomputed from inputs starting `reach` days before the first of them
and replaced atomically with one `replaceWhere` commit. What changed is read from the Delta
change data feed of the inputs since the versions the last build consumed (kept in
`gold.feature_state`, with the digest of the spec the build ran: `features/spec.py`). No state
yet, a spec that changed since (a window, a feature, an outcome's availability), or a feed that
no longer covers those versions, means a full rebuild, which overwrites the table in one commit.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.features import FeatureSetConfig
from lakeboost.config.model import LakeboostConfig
from lakeboost.faults import kill_during_write
from lakeboost.features.compute import compute_features
from lakeboost.features.label_rates import label_source
from lakeboost.features.outcomes import outcome_availability
from lakeboost.features.spec import feature_spec, spec_changes, spec_digest, spec_text
from lakeboost.io.catalog import TableCatalog
from lakeboost.logs import StepSummary
from lakeboost.spark.rows import first_row

log = logging.getLogger(__name__)


def reach_days(features: FeatureSetConfig) -> int:
    """How many days after a changed input day its change can show up in features."""
    return math.ceil(features.lookback() / dt.timedelta(days=1))


def input_tables(features: FeatureSetConfig, dataset: DatasetConfig) -> dict[str, list[str]]:
    """Logical input table -> SQL of the times its rows affect features from (for mapping
    changed rows to days): an event's own time, and when its late outcomes became known (a
    delivery recorded 40 days after its order changes the windows of the days after delivery)."""
    inputs = {dataset.events: [f"`{dataset.event_time}`"]}
    for outcome_group in features.outcome_windows.values():
        inputs[dataset.events] += [outcome_availability(outcome_group, dataset)]
    for group in features.label_rates.values():
        source = label_source(group, dataset)
        inputs.setdefault(source.table, []).append(f"`{source.available_at}`")
    return {table: list(dict.fromkeys(times)) for table, times in inputs.items()}


def build_features(catalog: TableCatalog, config: LakeboostConfig, names: list[str] | None = None, *,
                   full_rebuild: bool = False) -> StepSummary:
    dataset = config.require_dataset
    summary = StepSummary("features")
    for name in names or list(config.gold.features):
        started = time.monotonic()
        result = build_feature_set(catalog, name, config.gold.features[name], dataset, full_rebuild=full_rebuild)
        result["seconds"] = round(time.monotonic() - started, 2)
        summary.details[name] = result
        summary.rows_written += result["rows_written"]
        if result.get("version") is not None:
            summary.versions[f"gold.{name}"] = result["version"]
    return summary


@dataclass(frozen=True)
class LastBuild:
    """What `gold.feature_state` recorded of a feature table's latest build."""

    versions: dict[str, int]  # input table -> the version it read
    spec_digest: str | None  # None: recorded before lakeboost kept the spec
    spec: str | None


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
    dates = None if last is None else changed_dates(catalog, features, dataset, last.versions, versions)
    if dates is not None and not dates:
        log.info("%s: inputs and spec unchanged since the last build; nothing to do", target)
        return {"mode": "unchanged", "dates": 0, "rows_written": 0, "version": None, "spec_digest": digest}
    pinned = {table: catalog.read(table, version=v) for table, v in versions.items()}
    events = pinned[dataset.events]
    if dates is not None:
        first = min(dates) - dt.timedelta(days=reach_days(features))
        events = events.filter(F.col(dataset.date_column) >= F.lit(first))
    labels = {n: pinned[label_source(g, dataset).table] for n, g in features.label_rates.items()}
    computed = compute_features(events, features=features, dataset=dataset, labels=labels,
                                lookup=pinned[dataset.events])
    if dates is None:
        result = catalog.write(computed, target, mode="overwrite", partition_by=(dataset.date_column,),
                               extra_options={"overwriteSchema": "true"})
        mode = "full"
    else:
        in_dates = F.col(dataset.date_column).isin([d.isoformat() for d in sorted(dates)])
        condition = f"`{dataset.date_column}` IN ({', '.join(repr(d.isoformat()) for d in sorted(dates))})"
        with kill_during_write("features.during_replace", catalog.path(target)):
            result = catalog.write(computed.filter(in_dates), target, mode="overwrite", replace_where=condition)
        mode = "incremental"
    _record_state(catalog, name, versions, result.version, spec)
    log.info("%s: %s build of %s dates, version %s", target, mode, "all" if dates is None else len(dates),
             result.version)
    return {"mode": mode, "dates": None if dates is None else len(dates), "rows_written": result.rows_written,
            "version": result.version, "spec_digest": digest}


def _log_spec_change(target: str, last: LastBuild, spec: dict, digest: str) -> None:
    if last.spec_digest is None:
        log.info("%s: its last build recorded no spec (an older lakeboost built it); rebuilding it fully", target)
        return
    changed = spec_changes(json.loads(last.spec), spec) if last.spec else []
    log.info("%s: the spec of gold.features.%s changed since its last build (%s; digest %s -> %s); "
             "rebuilding it fully", target, target.removeprefix("gold."), ", ".join(changed) or "spec",
             last.spec_digest, digest)


def changed_dates(catalog: TableCatalog, features: FeatureSetConfig, dataset: DatasetConfig,
                  consumed: dict[str, int], current: dict[str, int | None]) -> set[dt.date] | None:
    """Event dates to recompute, or None when only a full rebuild is safe."""
    reach = reach_days(features)
    changed: set[dt.date] = set()
    for table, times in input_tables(features, dataset).items():
        start, end = consumed.get(table), current.get(table)
        if start is None or end is None:
            return None
        if end <= start:
            continue
        try:
            changes = catalog.read_changes(table, start + 1, end)
            days = changes.select(F.explode(F.array(*[F.to_date(F.expr(t)) for t in times])).alias("d"))
            if table == dataset.events:
                for labelled in _labels_of_changed_events(catalog, changes, features, dataset, current):
                    days = days.unionByName(labelled)
            # A few hundred dates at most: collecting them is metadata, not data.
            rows = days.distinct().collect()
        except Exception as exc:  # feed disabled, or its versions vacuumed: errors surface on read
            log.warning("no change feed for %s (%s); rebuilding fully", table, str(exc).splitlines()[0])
            return None
        changed |= {row.d for row in rows if row.d is not None}
    if not changed:
        return set()
    last_day = first_row(catalog.read(dataset.events).agg(F.max(dataset.date_column)))[0]
    affected = {d + dt.timedelta(days=k) for d in changed for k in range(reach + 1)}
    # Days after the last event hold no rows to recompute; a changed day itself is always
    # replaced (its events may all have been deleted, the latest day's included).
    return {d for d in affected if last_day is None or d <= last_day} | changed


def _labels_of_changed_events(catalog: TableCatalog, changes: DataFrame, features: FeatureSetConfig,
                              dataset: DatasetConfig, current: dict[str, int | None]) -> list[DataFrame]:
    """The report days of the labels of changed events: a label counts for its event's entity
    from when it was reported, so an event deleted, or moved to another entity, changes the
    label rates of the days after its label's report (often long after the event's own day)."""
    days = []
    for group in features.label_rates.values():
        source = label_source(group, dataset)
        labels = catalog.read(source.table, version=current[source.table]).select(
            *[F.col(c).alias(k) for c, k in zip(source.key, dataset.key, strict=True)],
            F.to_date(F.col(source.available_at)).alias("d"))
        keys = changes.select(*dataset.key).distinct()
        days.append(keys.join(labels, on=list(dataset.key), how="inner").select("d"))
    return days


def last_build(catalog: TableCatalog, name: str) -> LastBuild | None:
    """The latest build `gold.feature_state` recorded for the feature set (latest by when it
    was recorded: a table dropped and built again starts its versions at 0), or None."""
    if not catalog.exists(catalog.tables.feature_state):
        return None
    state = catalog.read(catalog.tables.feature_state).filter(F.col("feature_set") == name)
    recorded = [F.col(c) if c in state.columns else F.lit(None).cast("string")
                for c in ("spec_digest", "spec")]
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
    return LastBuild({t: int(v) for t, v in build["versions"].items()}, build["spec_digest"], build["spec"])


def _record_state(catalog: TableCatalog, name: str, versions: dict[str, int | None], built: int | None,
                  spec: dict) -> None:
    if built is None:
        return
    digest, text = spec_digest(spec), spec_text(spec)
    rows = [(name, table, int(v), int(built), digest, text) for table, v in versions.items() if v is not None]
    state = catalog.spark.createDataFrame(rows, "feature_set string, input string, input_version bigint, "
                                                "built_version bigint, spec_digest string, spec string")
    # mergeSchema: a state table from before the spec was recorded gains its two columns.
    catalog.write(state.withColumn("built_at", F.current_timestamp()), catalog.tables.feature_state, merge_schema=True)
