"""Silver refine: bronze -> conformed, contract-checked, PII-protected, deduplicated silver.

Each silver table consumes its bronze table as a Delta stream with a checkpoint, so a run
processes only bronze rows it has not seen; every micro-batch is upserted with a latest-wins
MERGE (replays change nothing) and its quarantine and quality-metric rows are appended with
Delta's idempotent transaction ids. `full_rebuild` discards the checkpoint and replaces the
table from all of bronze.

Latest wins by the table's `order_by`, then by arrival order (conform.ARRIVAL_COLUMNS, kept in
silver for the MERGE), then by the row hash. Fault points: "refine.during_merge" (inside the
silver MERGE, before its commit) and "refine.after_merge" (silver committed, quarantine and
quality rows not yet written); a re-run of the batch ends as an uninterrupted run would.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeboost.config.model import LakeboostConfig
from lakeboost.config.silver import Expectation, SilverTableConfig
from lakeboost.errors import LakeboostError
from lakeboost.faults import fault_point, kill_during_write
from lakeboost.io.catalog import TableCatalog
from lakeboost.logs import StepSummary
from lakeboost.refine import conform as c
from lakeboost.refine import expectations as ex
from lakeboost.refine.pii import protect_pii, resolve_pii_key
from lakeboost.spark.fs import delete_path
from lakeboost.spark.rows import first_row
from lakeboost.spark.streams import BatchTxn, await_query

log = logging.getLogger(__name__)
QUARANTINE = "silver.quarantine"
QUALITY = "silver.data_quality"


@dataclass
class RefineCounts:
    """Per-table accounting: rows_in = written + unchanged + superseded + dropped + quarantined."""

    rows_in: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged_or_superseded: int = 0
    dropped: int = 0
    quarantined: int = 0
    per_rule: dict[str, dict[str, int]] = field(default_factory=dict)


def refine_tables(spark: SparkSession, config: LakeboostConfig, names: list[str] | None = None, *,
                  full_rebuild: bool = False, run_id: str | None = None) -> StepSummary:
    """Refine the named silver tables (all configured by default) and return one summary."""
    catalog = TableCatalog(spark, config.storage)
    run_id = run_id or uuid.uuid4().hex
    selected = names or list(config.silver.tables)
    unknown = [n for n in selected if n not in config.silver.tables]
    if unknown:
        raise LakeboostError(f"unknown silver table(s) {unknown}; configured: {sorted(config.silver.tables)}")
    summary = StepSummary("refine")
    for name in selected:
        counts = refine_table(spark, catalog, name, config.silver.tables[name],
                              full_rebuild=full_rebuild, run_id=run_id)
        summary.rows_read += counts.rows_in
        summary.rows_written += counts.inserted + counts.updated
        summary.rows_quarantined += counts.quarantined
        summary.rows_skipped += counts.dropped + counts.unchanged_or_superseded
        summary.details[name] = counts.__dict__
        version = catalog.version(f"silver.{name}")
        if version is not None:
            summary.versions[f"silver.{name}"] = version
    summary.details["run_id"] = run_id
    return summary


def refine_table(spark: SparkSession, catalog: TableCatalog, name: str, table: SilverTableConfig, *,
                 full_rebuild: bool, run_id: str) -> RefineCounts:
    target = f"silver.{name}"
    checkpoint = catalog.checkpoint(target, "refine")
    key = resolve_pii_key(table.pii) if (table.pii.hash) else b""
    counts = RefineCounts()
    if full_rebuild:
        _remove_checkpoint(spark, checkpoint)
    txn = BatchTxn(spark, checkpoint)

    def process(batch: DataFrame, batch_id: int) -> None:
        overwrite = full_rebuild and batch_id == 0
        _refine_batch(catalog, name, table, batch, batch_id, run_id=run_id, pii_key=key,
                      overwrite=overwrite, counts=counts, txn=txn)

    stream = catalog.read_stream(table.source)
    query = (
        stream.writeStream.foreachBatch(process)
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .queryName(f"refine_{name}")
        .start()
    )
    await_query(query, f"refine of silver.{name}")
    return counts


def _remove_checkpoint(spark: SparkSession, checkpoint: str) -> None:
    delete_path(spark, checkpoint)
    shutil.rmtree(checkpoint, ignore_errors=True)


def _refine_batch(catalog: TableCatalog, name: str, table: SilverTableConfig, batch: DataFrame,
                  batch_id: int, *, run_id: str, pii_key: bytes, overwrite: bool, counts: RefineCounts,
                  txn: BatchTxn) -> None:
    target = f"silver.{name}"
    conformed = (
        batch.transform(c.conform, table=table)
        .transform(c.with_null_key_errors, keys=table.keys)
        .transform(ex.apply_expectations, table.expectations)
        .transform(protect_pii, pii=table.pii, key=pii_key)
    ).persist()
    try:
        tally = batch_counts(conformed, table.expectations)
        ex.raise_on_fail_rules(conformed, expectations=table.expectations, key_columns=table.keys, table=target,
                               violations=tally.violations)
        clean = conformed.filter(F.size(c.CAST_ERRORS) == 0)
        business = [col for col in _output_columns(table) if col in conformed.columns]
        passing = (
            ex.rows_passing(clean.drop(c.CAST_ERRORS))
            .transform(c.with_content_hash, columns=business)
            .transform(c.latest_per_key, keys=table.keys, order_by=table.order_by)
        )
        quarantined = quarantine_rows(conformed, table=target, run_id=run_id, batch_id=batch_id)
        order = merge_order(catalog, target, table.order_by, passing.columns)
        with kill_during_write("refine.during_merge", catalog.path(target), batch_id):
            result = catalog.upsert(passing, target, keys=table.keys, order_by=order, overwrite=overwrite)
        fault_point("refine.after_merge", batch_id)
        if tally.quarantined:
            catalog.write(quarantined, QUARANTINE, txn=txn(f"lakeboost.refine.{name}.quarantine", batch_id))
        _record_quality(catalog, name, table, tally, run_id=run_id, txn=txn(f"lakeboost.refine.{name}.quality",
                                                                               batch_id))
        _account(counts, tally, result.metrics if result.version is not None else {}, overwrite)
    finally:
        conformed.unpersist()


def merge_order(catalog: TableCatalog, target: str, order_by: tuple[str, ...], columns: list[str]) -> tuple[str, ...]:
    """The MERGE's latest-wins order: `order_by`, then the arrival-order columns that both the batch
    and the table have (a silver table from before `_source_modified_at`/`_source_position`
    gains them with this MERGE, and has always kept `_batch_id` and `_source_file`). With no
    `order_by` there is none: a later micro-batch arrived later, so any different row replaces
    its match (catalog.upsert)."""
    if not order_by:
        return ()
    arrival = c.arrival_order(columns, after=order_by)
    if arrival and catalog.exists(target):
        present = set(catalog.read(target).columns)
        arrival = tuple(col for col in arrival if col in present)
    return (*order_by, *arrival)


def _output_columns(table: SilverTableConfig) -> list[str]:
    dropped = set(table.pii.drop)
    masked = [f"{col}_masked" for col in table.pii.mask if col in table.pii.hash]
    return [col for col in table.columns if col not in dropped] + masked


def quarantined_condition() -> Column:
    """True for a conformed, expectation-checked row that goes to quarantine: it did not conform
    (a cast failed, a key is null), or it failed a `quarantine` rule. Rows failing a `fail` rule
    never get here: they stop the run first (ex.raise_on_fail_rules)."""
    actions = F.coalesce(F.col(ex.FAILED_ACTIONS), F.array().cast("array<string>"))
    return (F.size(c.CAST_ERRORS) > 0) | F.array_contains(actions, "quarantine")


def quarantine_rows(conformed: DataFrame, *, table: str, run_id: str, batch_id: int) -> DataFrame:
    """The quarantine table's rows for a batch (batch refine and the live stream share them): the
    source table, the reasons (a row that did not conform gets its conformance errors, "; "-joined:
    its rules were checked on nulls and add nothing; any other row the rules it failed, warn
    included, as ex.rows_quarantined lists them), the original record as JSON with its nulls, and
    where it came from.

    No value is copied out of the record's protection: `conformed` has been through protect_pii
    (hashed, masked, dropped as the table's pii says), and failed_rules holds rule names and
    conformance errors, which name a column and its type, never a value."""
    cast_failed = F.size(c.CAST_ERRORS) > 0
    expectation_rows = ex.rows_quarantined(conformed.filter(~cast_failed).drop(c.CAST_ERRORS), table=table)
    record = [F.col(f"`{col}`") for col in conformed.columns if not col.startswith("_failed") and col != c.CAST_ERRORS]
    cast_rows = conformed.filter(cast_failed).select(
        F.lit(table).alias("table"),
        F.concat_ws("; ", F.col(c.CAST_ERRORS)).alias("failed_rules"),
        F.to_json(F.struct(*record), {"ignoreNullFields": "false"}).alias("record"),
    )
    return (
        cast_rows.unionByName(expectation_rows.select("table", "failed_rules", "record"))
        .select("table", "failed_rules", "record", F.lit(run_id).alias("run_id"),
                F.lit(batch_id).cast("bigint").alias("batch_id"), F.current_timestamp().alias("quarantined_at"))
    )


@dataclass(frozen=True)
class BatchCounts:
    """What one aggregation over a conformed, expectation-checked batch counts."""

    rows_in: int
    conformance: int  # rows that did not conform (a cast failed, a key is null)
    quarantined: int  # those, plus rows failing a `quarantine` rule
    dropped: int  # rows a `drop` rule removed
    failed: dict[str, int]  # per rule: rows that conformed and failed it (the quality table's counts)
    violations: dict[str, int]  # per `fail` rule: rows failing it, conformed or not (the run stops)


def batch_counts(conformed: DataFrame, expectations: Mapping[str, Expectation] | None = None) -> BatchCounts:
    """Every count a batch needs (refine and the live stream), in one aggregation: the totals, each
    rule's failures among the conformed rows, and the `fail` rules' violations. Three passes over
    the batch before, one of them a job per table per batch for the quality table alone."""
    expectations = expectations or {}
    quarantined = quarantined_condition()
    conformed_row = F.size(c.CAST_ERRORS) == 0
    actions = F.coalesce(F.col(ex.FAILED_ACTIONS), F.array().cast("array<string>"))
    rules = list(expectations)
    fail_rules = [rule for rule, e in expectations.items() if e.action == "fail"]
    row = first_row(conformed.agg(
        F.count(F.lit(1)).alias("rows_in"),
        F.sum((~conformed_row).cast("int")).alias("conformance"),
        F.sum(quarantined.cast("int")).alias("quarantined"),
        F.sum((~quarantined & F.array_contains(actions, "drop")).cast("int")).alias("dropped"),
        *[ex.count_failing(rule, conformed_row).alias(f"_failed_{i}") for i, rule in enumerate(rules)],
        *[ex.count_failing(rule).alias(f"_violated_{i}") for i, rule in enumerate(fail_rules)],
    ))
    return BatchCounts(
        **{k: int(row[k] or 0) for k in ("rows_in", "conformance", "quarantined", "dropped")},
        failed={rule: int(row[f"_failed_{i}"]) for i, rule in enumerate(rules)},
        violations={rule: int(row[f"_violated_{i}"]) for i, rule in enumerate(fail_rules)},
    )


def _record_quality(catalog: TableCatalog, name: str, table: SilverTableConfig, counts: BatchCounts, *,
                    run_id: str, txn: tuple[str, int]) -> None:
    """The batch's quality rows (conformance, then each rule) from its counts: no pass over the batch."""
    conformed = counts.rows_in - counts.conformance
    rules = [("_conformance", "quarantine", conformed, counts.conformance),
             *ex.rule_counts(table.expectations, rows=conformed, failed=counts.failed)]
    rows = catalog.spark.createDataFrame(rules, "rule string, action string, passed bigint, failed bigint").select(
        F.lit(run_id).alias("run_id"), F.lit(f"silver.{name}").alias("table"), "rule", "action", "passed", "failed",
        F.lit(txn[1]).cast("bigint").alias("batch_id"), F.current_timestamp().alias("recorded_at"),
    )
    catalog.write(rows, QUALITY, txn=txn)


def _account(counts: RefineCounts, totals: BatchCounts, metrics: dict[str, int], overwrite: bool) -> None:
    passing = totals.rows_in - totals.quarantined - totals.dropped
    inserted = metrics.get("numOutputRows", 0) if overwrite or "numTargetRowsInserted" not in metrics \
        else metrics.get("numTargetRowsInserted", 0)
    updated = metrics.get("numTargetRowsUpdated", 0)
    counts.rows_in += totals.rows_in
    counts.inserted += inserted
    counts.updated += updated
    counts.unchanged_or_superseded += passing - inserted - updated
    counts.dropped += totals.dropped
    counts.quarantined += totals.quarantined
