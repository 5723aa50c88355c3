"""Bronze ingestion: every source row lands in `bronze.<source>` or in `bronze.quarantine`.

File sources run as Structured Streaming queries: the checkpoint remembers which files were
ingested (re-runs add nothing), and each micro-batch writes with Delta's idempotent
`txnAppId`/`txnVersion` = (source and query id, batch id), so a batch replayed after a kill
is skipped by Delta instead of being appended twice (spark.streams.BatchTxn). Idempotency is
also keyed on the data: rows of a file bronze (or the quarantine) already holds are never
written again, so a lost or deleted checkpoint, which replays every file in landing under a
new query id, duplicates nothing.

JDBC sources are read as a snapshot and inserted with a MERGE on a content hash, so re-reading
the same snapshot inserts nothing; the incremental high-water mark is inclusive (`>=`) for the
same reason: a row written later with the previous maximum's timestamp is still read. With
`on_type_change: cast` a value that does not convert to the table's type goes to the
quarantine with a reason, never into bronze as NULL.
"""

from __future__ import annotations

import csv
import logging
import time

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeboost.config.durations import spark_interval
from lakeboost.config.model import FileSourceConfig, JdbcSourceConfig, KafkaSourceConfig, LakeboostConfig
from lakeboost.errors import LakeboostError
from lakeboost.faults import fault_point
from lakeboost.ingest import parse
from lakeboost.ingest.kafka import ingest_kafka
from lakeboost.ingest.schema_drift import effective_types, struct_types
from lakeboost.ingest.sources import (
    SOURCE_FILE,
    SOURCE_FILE_MODIFIED,
    open_jdbc,
    parquet_types,
    read_file_stream,
    redact_url,
    require_path,
)
from lakeboost.io.catalog import TableCatalog
from lakeboost.io.hashing import with_content_hash
from lakeboost.logs import StepSummary
from lakeboost.spark.diagnostics import root_cause
from lakeboost.spark.fs import read_first_line
from lakeboost.spark.rows import first_row
from lakeboost.spark.streams import BatchLedger, BatchTxn, await_query

log = logging.getLogger(__name__)


def bronze_table(source: str) -> str:
    return f"bronze.{source}"


def ingest_sources(
    catalog: TableCatalog, config: LakeboostConfig, names: list[str] | None = None, *,
    continuous: bool = False, timeout_seconds: float | None = None,
) -> StepSummary:
    """Ingest the named sources (all by default) into bronze; one summary over all of them."""
    spark = catalog.spark
    selected = names or list(config.sources)
    unknown = [n for n in selected if n not in config.sources]
    if unknown:
        raise LakeboostError(f"unknown source(s) {unknown}; configured: {sorted(config.sources)}")
    total = StepSummary("ingest")
    started = time.monotonic()
    for name in selected:
        cfg = config.sources[name]
        if isinstance(cfg, JdbcSourceConfig):
            summary = ingest_jdbc(spark, catalog, name, cfg)
        elif isinstance(cfg, KafkaSourceConfig):
            summary = ingest_kafka(spark, catalog, name, cfg, continuous=continuous,
                                   timeout_seconds=timeout_seconds)
        else:
            summary = ingest_files(spark, catalog, name, cfg, continuous=continuous,
                                   timeout_seconds=timeout_seconds)
        log.info("source %s: read %d, bronze %d, quarantined %d, already ingested %d", name,
                 summary.rows_read, summary.rows_written, summary.rows_quarantined, summary.rows_skipped)
        total.add(summary)
        total.details[name] = {**{k: getattr(summary, k) for k in
                                  ("rows_read", "rows_written", "rows_quarantined", "rows_skipped")},
                               **summary.details}
        if summary.details.get("rows_rescued"):
            log.warning("source %s: %d rows carried fields the schema does not declare (kept in %s)",
                        name, summary.details["rows_rescued"], parse.RESCUED)
    total.seconds = round(time.monotonic() - started, 2)
    return total


def ingest_files(
    spark: SparkSession, catalog: TableCatalog, name: str, cfg: FileSourceConfig, *,
    continuous: bool = False, timeout_seconds: float | None = None,
) -> StepSummary:
    """Run the file source's stream until it has caught up (or for `timeout_seconds` when continuous)."""
    require_path(spark, name, cfg.path)
    table = bronze_table(name)
    incoming = dict(cfg.declared_schema) if cfg.declared_schema else parquet_types(spark, name, cfg)
    existing = catalog.read(table).schema if catalog.exists(table) else None
    types = effective_types(source=name, table=table, incoming=incoming, existing=existing,
                            on_type_change=cfg.on_type_change)
    summary = StepSummary(f"ingest:{name}")
    delimiter = cfg.options.get("sep", cfg.options.get("delimiter", ","))
    checkpoint = catalog.checkpoint(table, "ingest")
    txn = BatchTxn(spark, checkpoint)

    reads_header = cfg.format == "csv" and cfg.options.get("header", "false").lower() == "true"

    def write_batch(batch: DataFrame, batch_id: int) -> None:
        # The batch's files are known only from its rows (the plan of a micro-batch lists none):
        # cached, so finding them does not read the files twice.
        batch = batch.persist() if reads_header else batch
        try:
            _write_batch(batch, batch_id)
        finally:
            batch.unpersist()

    def _write_batch(batch: DataFrame, batch_id: int) -> None:
        headers = _csv_headers(spark, batch, delimiter) if reads_header else {}
        with_meta = (
            batch.transform(parse.by_header, file_column=SOURCE_FILE, headers=headers, declared=types)
            .transform(parse.with_metadata, source=name, source_file=F.col(SOURCE_FILE), batch_id=batch_id,
                       source_modified=F.col(SOURCE_FILE_MODIFIED))
        )
        fmt = cfg.format if cfg.format != "parquet" else "typed"
        checked = parse.with_rejection_reason(with_meta, declared=types, fmt=fmt, delimiter=delimiter,
                                              file_column=SOURCE_FILE,
                                              file_reasons=parse.header_reasons(headers, types)).persist()
        try:
            _write_checked_batch(catalog, name, table, checked, types, txn, batch_id, summary)
        finally:
            checked.unpersist()

    # Parquet files are read with their own types: read with the table's older type (`cast`), a
    # value Parquet cannot convert would fail the read or arrive as NULL. The conversion to the
    # table's type happens per row below, where a value that does not convert is quarantined.
    stream = read_file_stream(spark, cfg, incoming if cfg.format == "parquet" else types)
    ledger = BatchLedger(spark, checkpoint, summary)  # the batches' counts, also from a Connect server
    writer = (
        stream.writeStream.foreachBatch(ledger.wrap(write_batch))
        .option("checkpointLocation", checkpoint)
        .queryName(f"ingest_{name}")
    )
    run_continuously = continuous or cfg.trigger == "processing_time"
    writer = writer.trigger(processingTime=spark_interval(cfg.interval)) if run_continuously \
        else writer.trigger(availableNow=True)
    await_query(writer.start(), f"source {name!r}: ingest stream",
                timeout_seconds if run_continuously else None)
    ledger.settle()
    return summary


def _csv_headers(spark: SparkSession, batch: DataFrame, delimiter: str) -> dict[str, list[str]]:
    """Each of the batch's files' header, by the file's path as the reader reports it: one line
    read on the driver per file."""
    files = [row[0] for row in batch.select(SOURCE_FILE).distinct().collect()]
    return {file: next(csv.reader([read_first_line(spark, file)], delimiter=delimiter), [])
            for file in files}


def _files_already_in(catalog: TableCatalog, table: str, file_column: str, files: list[str],
                      source: str | None = None) -> set[str]:
    """Which of `files` `table` already holds rows of (the data's own record of what was ingested)."""
    if not files or not catalog.exists(table):
        return set()
    rows = catalog.read(table).filter(F.col(file_column).isin(files))
    if source is not None:
        rows = rows.filter(F.col("source") == F.lit(source))
    return {row[0] for row in rows.select(file_column).distinct().collect()}


def _write_checked_batch(catalog: TableCatalog, name: str, table: str, checked: DataFrame,
                         types: dict[str, str], txn: BatchTxn, batch_id: int, summary: StepSummary) -> None:
    rescued = F.col(parse.RESCUED).isNotNull() if parse.RESCUED in checked.columns else F.lit(False)
    per_file = (checked.groupBy(F.col(parse.REASON).isNull().alias("good"), F.col("_source_file"))
                .agg(F.count(F.lit(1)).alias("count"), F.sum(rescued.cast("int")).alias("rescued")).collect())
    good_files = [r["_source_file"] for r in per_file if r["good"]]
    bad_files = [r["_source_file"] for r in per_file if not r["good"]]
    # Rows of files a table already holds were written by an earlier query (the checkpoint was
    # lost, deleted or replaced): they are skipped, so landing replayed from scratch adds nothing.
    done_good = _files_already_in(catalog, table, "_source_file", good_files)
    quarantine = catalog.tables.bronze_quarantine
    done_bad = _files_already_in(catalog, quarantine, "source_file", bad_files, source=name)
    good = sum(r["count"] for r in per_file if r["good"] and r["_source_file"] not in done_good)
    bad = sum(r["count"] for r in per_file if not r["good"] and r["_source_file"] not in done_bad)
    replayed = sum(r["count"] for r in per_file) - good - bad
    summary.rows_read += good + bad + replayed
    summary.rows_skipped += replayed
    if replayed:
        log.warning("source %s: %d rows of %d files already in bronze or the quarantine were skipped "
                    "(their checkpoint was lost or replaced)", name, replayed, len(done_good | done_bad))
    not_done_good = ~F.col("_source_file").isin(list(done_good)) if done_good else F.lit(True)
    not_done_bad = ~F.col("_source_file").isin(list(done_bad)) if done_bad else F.lit(True)
    if good:
        result = catalog.write(parse.bronze_rows(checked.filter(not_done_good), declared=types), table,
                               txn=txn(f"lakeboost.ingest.{name}", batch_id), merge_schema=True)
        if result.version is not None:
            summary.rows_written += good
            summary.details["rows_rescued"] = summary.details.get("rows_rescued", 0) + sum(
                r["rescued"] or 0 for r in per_file if r["good"] and r["_source_file"] not in done_good)
            summary.versions[table] = result.version
        else:
            summary.rows_skipped += good
    fault_point("ingest.after_bronze_commit", batch_id)
    if bad:
        result = catalog.write(parse.quarantine_rows(checked.filter(not_done_bad), declared=types),
                               quarantine, txn=txn(f"lakeboost.ingest.{name}.quarantine", batch_id))
        if result.version is not None:
            summary.rows_quarantined += bad
            summary.versions[quarantine] = result.version
        else:
            summary.rows_skipped += bad
    fault_point("ingest.after_quarantine_commit", batch_id)


def ingest_jdbc(spark: SparkSession, catalog: TableCatalog, name: str, cfg: JdbcSourceConfig) -> StepSummary:
    """Insert the rows of the JDBC snapshot that bronze does not hold yet; values that do not
    convert to the table's type (`on_type_change: cast`) go to the quarantine."""
    table = bronze_table(name)
    summary = StepSummary(f"ingest:{name}")
    source = open_jdbc(spark, name, cfg)
    exists = catalog.exists(table)
    existing = catalog.read(table).schema if exists else None
    incoming = struct_types(source.schema)
    types = effective_types(source=name, table=table, incoming=incoming,
                            existing=existing, on_type_change=cfg.on_type_change)
    if cfg.incremental_column and exists:
        high_water = first_row(catalog.read(table).agg(F.max(cfg.incremental_column)))[0]
        if high_water is not None:
            # Pushed down to the database as WHERE col >= value. Inclusive: a row written after the
            # last run with the maximum's own timestamp must still be read; the rows bronze holds
            # already are recognised by their content hash below and not inserted again.
            source = source.filter(F.col(cfg.incremental_column) >= F.lit(high_water))
    batch_id = _next_jdbc_batch(catalog, table) if exists else 0
    where = f"{redact_url(cfg.url)}#{cfg.table or 'query'}"
    cast_columns = {c: t for c, t in types.items() if c in incoming and incoming[c] != t}
    rows = (
        source.transform(parse.with_cast_reasons, casts=cast_columns)
        .transform(parse.with_metadata, source=name, source_file=F.lit(where), batch_id=batch_id)
    )
    # One consistent snapshot: the database may change between the count and the MERGE.
    rows = rows.persist()
    try:
        counts = {r["good"]: r["count"] for r in
                  rows.groupBy(F.col(parse.REASON).isNull().alias("good")).count().collect()}
        good = (
            parse.bronze_rows(rows, declared=types)
            .transform(with_content_hash, columns=list(types))
        )
        if not exists:
            result = catalog.write(good, table)
        else:
            result = catalog.insert_new_rows(good, table, "t._row_hash = s._row_hash")
        inserted = result.rows_written if result.version is not None else 0
        quarantined = 0
        if counts.get(False, 0):
            refused = parse.quarantine_rows(rows, declared=types)
            # Re-reading the same snapshot must not quarantine its rows twice.
            same = "t.source = s.source AND t.source_file = s.source_file AND t.raw_record = s.raw_record"
            quarantine = catalog.tables.bronze_quarantine
            kept = (catalog.insert_new_rows(refused, quarantine, same) if catalog.exists(quarantine)
                    else catalog.write(refused, quarantine))
            quarantined = kept.rows_written if kept.version is not None else 0
            if kept.version is not None:
                summary.versions[quarantine] = kept.version
    except LakeboostError:
        raise
    except Exception as exc:
        raise LakeboostError(f"source {name!r}: writing {table} failed: {root_cause(exc)}") from None
    finally:
        rows.unpersist()
    read = counts.get(True, 0) + counts.get(False, 0)
    summary.rows_read, summary.rows_written, summary.rows_quarantined = read, inserted, quarantined
    summary.rows_skipped = read - inserted - quarantined
    if result.version is not None:
        summary.versions[table] = result.version
    return summary


def _next_jdbc_batch(catalog: TableCatalog, table: str) -> int:
    latest = first_row(catalog.read(table).agg(F.max("_batch_id")))[0]
    return 0 if latest is None else int(latest) + 1

