"""Build gold feature tables incrementally: recompute only the dates whose inputs changed.

A changed source row on day d can change the features of events on days d .. d + reach,
where reach is the longest window (a late record on day 5 with a 30-day window touches days
5..35). Those dates are recomputed from inputs starting `reach` days before the first of them
and replaced atomically with one `replaceWhere` commit. What changed is read from the Delta
change data feed of the inputs since the versions the last build consumed (kept in
`gold.feature_state`). No state yet, or a feed that no longer covers those versions, means a
full rebuild, which overwrites the table in one commit.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.features import FeatureSetConfig
from lakeboost.config.model import LakeboostConfig
from lakeboost.features.compute import compute_features
from lakeboost.features.label_rates import label_source
from lakeboost.features.outcomes import outcome_availability
from lakeboost.io.catalog import TableCatalog
from lakeboost.logs import StepSummary
from lakeboost.spark.rows import first_row

log = logging.getLogger(__name__)
STATE = "gold.feature_state"


def reach_days(features: FeatureSetConfig) -> int:
    """How many days after a changed input day its change can show up in features."""
    return math.ceil(features.lookback_seconds() / 86400)


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


def build_features(spark: SparkSession, config: LakeboostConfig, names: list[str] | None = None, *,
                   full_rebuild: bool = False) -> StepSummary:
    catalog = TableCatalog(spark, config.storage)
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


def build_feature_set(catalog: TableCatalog, name: str, features: FeatureSetConfig, dataset: DatasetConfig, *,
                      full_rebuild: bool = False) -> dict:
    target = f"gold.{name}"
    versions = {table: catalog.version(table) for table in input_tables(features, dataset)}
    consumed = None if full_rebuild or not catalog.exists(target) else _consumed_versions(catalog, name)
    dates = None if consumed is None else changed_dates(catalog, features, dataset, consumed, versions)
    if dates is not None and not dates:
        log.info("%s: inputs unchanged since the last build; nothing to do", target)
        return {"mode": "unchanged", "dates": 0, "rows_written": 0, "version": None}
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
        result = catalog.write(computed.filter(in_dates), target, mode="overwrite", replace_where=condition)
        mode = "incremental"
    _record_state(catalog, name, versions, result.version)
    log.info("%s: %s build of %s dates, version %s", target, mode, "all" if dates is None else len(dates),
             result.version)
    return {"mode": mode, "dates": None if dates is None else len(dates), "rows_written": result.rows_written,
            "version": result.version}


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
            # A few hundred dates at most: collecting them is metadata, not data.
            days = changes.select(F.explode(F.array(*[F.to_date(F.expr(t)) for t in times])).alias("d")) \
                .distinct().collect()
        except Exception as exc:  # feed disabled, or its versions vacuumed: errors surface on read
            log.warning("no change feed for %s (%s); rebuilding fully", table, str(exc).splitlines()[0])
            return None
        changed |= {row.d for row in days if row.d is not None}
    if not changed:
        return set()
    last_day = first_row(catalog.read(dataset.events).agg(F.max(dataset.date_column)))[0]
    affected = {d + dt.timedelta(days=k) for d in changed for k in range(reach + 1)}
    return {d for d in affected if last_day is None or d <= last_day}


def _consumed_versions(catalog: TableCatalog, name: str) -> dict[str, int] | None:
    if not catalog.exists(STATE):
        return None
    rows = (
        catalog.read(STATE).filter(F.col("feature_set") == name)
        .groupBy("input").agg(F.max_by("input_version", "built_version").alias("v"))
        .collect()
    )
    return {r["input"]: int(r["v"]) for r in rows} or None


def _record_state(catalog: TableCatalog, name: str, versions: dict[str, int | None], built: int | None) -> None:
    if built is None:
        return
    rows = [(name, table, int(v), int(built)) for table, v in versions.items() if v is not None]
    state = catalog.spark.createDataFrame(rows, "feature_set string, input string, input_version bigint, "
                                                "built_version bigint")
    catalog.write(state.withColumn("built_at", F.current_timestamp()), STATE)

