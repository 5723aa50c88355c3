"""Bronze ingestion: every source row lands in `bronze.<source>` or in `bronze.quarantine`.

File sources run as Structured Streaming queries: the checkpoint remembers which files were
ingested (re-runs add nothing), and each micro-batch writes with Delta's idempotent
`txnAppId`/`txnVersion` = (source and query id, batch id), so a batch replayed after a kill
is skipped by Delta instead of being appended twice (spark.streams.BatchTxn). JDBC sources are
read as a snapshot and inserted with a MERGE on a content hash, so re-reading the same snapshot
inserts nothing.
"""

from __future__ import annotations

import logging
import time

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeboost.config.model import FileSourceConfig, JdbcSourceConfig, LakeboostConfig
from lakeboost.errors import LakeboostError
from lakeboost.ingest import parse
from lakeboost.ingest.schema_drift import effective_types, struct_types
from lakeboost.ingest.sources import (
    SOURCE_FILE,
    open_jdbc,
    parquet_types,
    read_file_stream,
    redact_url,
    require_path,
)
from lakeboost.io.catalog import TableCatalog
from lakeboost.logs import StepSummary
from lakeboost.spark.diagnostics import root_cause
from lakeboost.spark.rows import first_row
from lakeboost.spark.streams import BatchTxn, await_query

log = logging.getLogger(__name__)
QUARANTINE_TABLE = "bronze.quarantine"


def bronze_table(source: str) -> str:
    return f"bronze.{source}"


def ingest_sources(
    spark: SparkSession, config: LakeboostConfig, names: list[str] | None = None, *,
    continuous: bool = False, timeout_seconds: float | None = None,
) -> StepSummary:
    """Ingest the named sources (all by default) into bronze; one summary over all of them."""
    catalog = TableCatalog(spark, config.storage)
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
        else:
            summary = ingest_files(spark, catalog, name, cfg, continuous=continuous,
                                   timeout_seconds=timeout_seconds)
        log.info("source %s: read %d, bronze %d, quarantined %d, already ingested %d", name,
                 summary.rows_read, summary.rows_written, summary.rows_quarantined, summary.rows_skipped)
        total.add(summary)
        total.details[name] = {k: getattr(summary, k) for k in
                               ("rows_read", "rows_written", "rows_quarantined", "rows_skipped")}
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

    def write_batch(batch: DataFrame, batch_id: int) -> None:
        with_meta = parse.with_metadata(batch, source=name, source_file=F.col(SOURCE_FILE),
                                        batch_id=batch_id)
        fmt = cfg.format if cfg.format != "parquet" else "typed"
        checked = parse.with_rejection_reason(with_meta, declared=types, fmt=fmt,
                                              delimiter=delimiter).persist()
        try:
            _write_checked_batch(catalog, name, table, checked, types, txn, batch_id, summary)
        finally:
            checked.unpersist()

    stream = read_file_stream(spark, cfg, types)
    writer = (
        stream.writeStream.foreachBatch(write_batch)
        .option("checkpointLocation", checkpoint)
        .queryName(f"ingest_{name}")
    )
    run_continuously = continuous or cfg.trigger == "processing_time"
    writer = writer.trigger(processingTime=cfg.interval) if run_continuously else writer.trigger(availableNow=True)
    await_query(writer.start(), f"source {name!r}: ingest stream",
                timeout_seconds if run_continuously else None)
    return summary


def _write_checked_batch(catalog: TableCatalog, name: str, table: str, checked: DataFrame,
                         types: dict[str, str], txn: BatchTxn, batch_id: int, summary: StepSummary) -> None:
    counts = {row["good"]: row["count"] for row in
              checked.groupBy(F.col(parse.REASON).isNull().alias("good")).count().collect()}
    good, bad = counts.get(True, 0), counts.get(False, 0)
    summary.rows_read += good + bad
    if good:
        result = catalog.write(parse.bronze_rows(checked, declared=types), table,
                               txn=txn(f"lakeboost.ingest.{name}", batch_id), merge_schema=True)
        if result.version is not None:
            summary.rows_written += good
            summary.versions[table] = result.version
        else:
            summary.rows_skipped += good
    if bad:
        result = catalog.write(parse.quarantine_rows(checked, declared=types), QUARANTINE_TABLE,
                               txn=txn(f"lakeboost.ingest.{name}.quarantine", batch_id))
        if result.version is not None:
            summary.rows_quarantined += bad
            summary.versions[QUARANTINE_TABLE] = result.version
        else:
            summary.rows_skipped += bad


def ingest_jdbc(spark: SparkSession, catalog: TableCatalog, name: str, cfg: JdbcSourceConfig) -> StepSummary:
    """Insert the rows of the JDBC snapshot that bronze does not hold yet."""
    table = bronze_table(name)
    summary = StepSummary(f"ingest:{name}")
    source = open_jdbc(spark, name, cfg)
    exists = catalog.exists(table)
    existing = catalog.read(table).schema if exists else None
    types = effective_types(source=name, table=table, incoming=struct_types(source.schema),
                            existing=existing, on_type_change=cfg.on_type_change)
    if cfg.incremental_column and exists:
        high_water = first_row(catalog.read(table).agg(F.max(cfg.incremental_column)))[0]
        if high_water is not None:
            # Pushed down to the database as WHERE col > value.
            source = source.filter(F.col(cfg.incremental_column) > F.lit(high_water))
    batch_id = _next_jdbc_batch(catalog, table) if exists else 0
    rows = (
        source.select(*[F.col(f"`{c}`").cast(t).alias(c) for c, t in types.items()])
        .transform(parse.with_row_hash, list(types))
        .transform(parse.with_metadata, source=name,
                   source_file=F.lit(f"{redact_url(cfg.url)}#{cfg.table or 'query'}"), batch_id=batch_id)
    )
    # One consistent snapshot: the database may change between the count and the MERGE.
    rows = rows.persist()
    try:
        read = rows.count()
        if not exists:
            result = catalog.write(rows, table)
        else:
            result = catalog.insert_new_rows(rows, table, "t._row_hash = s._row_hash")
        inserted = result.rows_written if result.version is not None else 0
    except LakeboostError:
        raise
    except Exception as exc:
        raise LakeboostError(f"source {name!r}: writing {table} failed: {root_cause(exc)}") from None
    finally:
        rows.unpersist()
    summary.rows_read, summary.rows_written, summary.rows_skipped = read, inserted, read - inserted
    if result.version is not None:
        summary.versions[table] = result.version
    return summary


def _next_jdbc_batch(catalog: TableCatalog, table: str) -> int:
    latest = first_row(catalog.read(table).agg(F.max("_batch_id")))[0]
    return 0 if latest is None else int(latest) + 1

