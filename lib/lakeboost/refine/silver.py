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
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeboost.config.model import LakeboostConfig
from lakeboost.config.silver import SilverTableConfig
from lakeboost.errors import LakeboostError
from lakeboost.faults import fault_point, kill_during_write
from lakeboost.io.catalog import TableCatalog
from lakeboost.logs import StepSummary
from lakeboost.refine import conform as c
from lakeboost.refine import expectations as ex
from lakeboost.refine.contract import BatchCounts, apply_contract, batch_counts, split_contract
from lakeboost.refine.pii import resolve_pii_key
from lakeboost.spark.fs import delete_path
from lakeboost.spark.streams import BatchLedger, BatchTxn, await_query

log = logging.getLogger(__name__)


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


def refine_tables(catalog: TableCatalog, config: LakeboostConfig, names: list[str] | None = None, *,
                  full_rebuild: bool = False, run_id: str | None = None) -> StepSummary:
    """Refine the named silver tables (all configured by default) and return one summary."""
    spark = catalog.spark
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
    ledger = BatchLedger(spark, checkpoint, counts)  # the batches' counts, also from a Connect server
    query = (
        stream.writeStream.foreachBatch(ledger.wrap(process))
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .queryName(f"refine_{name}")
        .start()
    )
    await_query(query, f"refine of silver.{name}")
    ledger.settle()
    return counts


def _remove_checkpoint(spark: SparkSession, checkpoint: str) -> None:
    delete_path(spark, checkpoint)
    shutil.rmtree(checkpoint, ignore_errors=True)


def _refine_batch(catalog: TableCatalog, name: str, table: SilverTableConfig, batch: DataFrame,
                  batch_id: int, *, run_id: str, pii_key: bytes, overwrite: bool, counts: RefineCounts,
                  txn: BatchTxn) -> None:
    target = f"silver.{name}"
    checked = apply_contract(batch, table=table, pii_key=pii_key).persist()
    try:
        tally = batch_counts(checked, table.expectations)
        ex.raise_on_fail_rules(checked, expectations=table.expectations, key_columns=table.keys, table=target,
                               violations=tally.violations)
        passing, quarantined = split_contract(checked, table=table, quarantine_as=target, run_id=run_id,
                                              batch_id=batch_id)
        order = merge_order(catalog, target, table.order_by, passing.columns)
        with kill_during_write("refine.during_merge", catalog.path(target), batch_id):
            result = catalog.upsert(passing, target, keys=table.keys, order_by=order, overwrite=overwrite)
        fault_point("refine.after_merge", batch_id)
        if tally.quarantined:
            catalog.write(quarantined, catalog.tables.silver_quarantine,
                          txn=txn(f"lakeboost.refine.{name}.quarantine", batch_id))
        _record_quality(catalog, name, table, tally, run_id=run_id, txn=txn(f"lakeboost.refine.{name}.quality",
                                                                               batch_id))
        _account(counts, tally, result.metrics if result.version is not None else {}, overwrite)
    finally:
        checked.unpersist()


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
    catalog.write(rows, catalog.tables.data_quality, txn=txn)


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
