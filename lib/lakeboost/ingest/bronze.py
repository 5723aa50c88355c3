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
import dataclasses
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from lakeboost.borrowed import jvm, stream_log
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
from lakeboost.progress import Progress
from lakeboost.spark.diagnostics import root_cause
from lakeboost.spark.fs import path_exists, read_first_line, read_text
from lakeboost.spark.kind import is_connect
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
    with Progress("ingest", "source", total=len(selected), lines=False) as progress:  # each logs its own line
        for name in selected:
            progress.start(name)
            cfg = config.sources[name]
            if isinstance(cfg, JdbcSourceConfig):
                summary = ingest_jdbc(spark, catalog, name, cfg)
            elif isinstance(cfg, KafkaSourceConfig):
                summary = ingest_kafka(spark, catalog, name, cfg, continuous=continuous,
                                       timeout_seconds=timeout_seconds)
            else:
                summary = ingest_files(spark, catalog, name, cfg, continuous=continuous,
                                       timeout_seconds=timeout_seconds)
            progress.done(name)
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
    fmt = cfg.format if cfg.format != "parquet" else "typed"

    def checked_rows(batch: DataFrame, batch_id: int, headers: dict[str, list[str]]) -> DataFrame:
        with_meta = (
            batch.transform(parse.by_header, file_column=SOURCE_FILE, headers=headers, declared=types)
            .transform(parse.with_metadata, source=name, source_file=F.col(SOURCE_FILE), batch_id=batch_id,
                       source_modified=F.col(SOURCE_FILE_MODIFIED))
        )
        checked = parse.with_rejection_reason(with_meta, declared=types, fmt=fmt, delimiter=delimiter,
                                              file_column=SOURCE_FILE,
                                              file_reasons=parse.header_reasons(headers, types))
        return checked.transform(parse.typed_rows, declared=types)

    def write_batch(batch: DataFrame, batch_id: int) -> None:
        logged = _logged_files(spark, checkpoint, batch_id)
        if logged is not None:
            headers = _csv_headers(spark, list(logged), delimiter) if reads_header else {}
            if all(h == list(types) for h in headers.values()):
                # The batch's files are known before its rows are read, and every header is the
                # declared columns in order: one pass parses, checks and types the rows, writes
                # bronze and keeps them for the quarantine and the counts.
                typed = _stored(checked_rows(batch, batch_id, {}))
                try:
                    _write_logged_batch(catalog, name, table, typed, logged, txn, batch_id, summary)
                finally:
                    _release(typed)
                return
        # Parsed, checked and typed in one pass, by position: right for every file whose header
        # is the declared columns in their order. Kept (`_stored`), so that the batch's files
        # (known only from its rows: the plan of a micro-batch lists none) and both writes read
        # it instead of the files.
        typed = _stored(checked_rows(batch, batch_id, {}))
        redone: DataFrame | None = None
        try:
            per_file = _per_file(typed)
            rows = typed
            if reads_header:
                headers = _csv_headers(spark, [f.path for f in per_file], delimiter)
                drift = {f: h for f, h in headers.items() if h != list(types)}
                if drift:
                    # A file whose header orders the columns differently is read again by name,
                    # one naming other columns is refused whole: only these files, only then.
                    redone = _stored(checked_rows(batch.filter(F.col(SOURCE_FILE).isin(list(drift))), batch_id,
                                                  drift))
                    rows = typed.filter(~F.col("_source_file").isin(list(drift))).unionByName(redone)
                    per_file = [f if f.path not in drift else dataclasses.replace(f, header_drift=True)
                                for f in per_file]
            _write_typed_batch(catalog, name, table, rows, per_file, txn, batch_id, summary)
        finally:
            _release(typed)
            if redone is not None:
                _release(redone)

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


def _logged_files(spark: SparkSession, checkpoint: str, batch_id: int) -> dict[str, int] | None:
    """The files of micro-batch `batch_id` and their modification times (ms), from Spark's own
    logs in the query's checkpoint (lakeboost.borrowed.stream_log); None where those cannot be
    read as expected: the batch's files are then found from its rows."""
    return stream_log.batch_files(lambda path: read_text(spark, path), lambda path: path_exists(spark, path),
                                  checkpoint, batch_id)


def _stored(df: DataFrame) -> DataFrame:
    """`df` computed once, by the first action on it, and kept for the next ones: its rows as
    the first action made them (a local checkpoint, memory then disk). Spark's cache (`persist`)
    would encode them as compressed columns first: at 1M demo rows that took 20 s, longer than
    parsing them (measured, bench/bench_ingest.py)."""
    return df.localCheckpoint(eager=False)


def _release(df: DataFrame) -> None:
    """Free the rows `_stored` kept now, not at the JVM's next garbage collection (classic
    sessions; Spark Connect frees them when the DataFrame is dropped)."""
    if not is_connect(df.sparkSession) and jvm.available(df.sparkSession):
        jvm.release_local_checkpoint(df)


@dataclasses.dataclass(frozen=True)
class BatchFile:
    """One source file of a micro-batch, as its checked rows counted it."""

    path: str
    modified: int | None  # the file's modification time (`_source_modified_at`), in microseconds
    good: int
    bad: int
    rescued: int
    header_drift: bool = False  # its rows were checked again by its header: `good`/`bad` are by position


def _per_file(typed: DataFrame) -> list[BatchFile]:
    """Each file of a checked batch (`parse.typed_rows`) with its good and refused rows: one small
    aggregate, on the driver one row per file."""
    rejected = F.col(parse.REASON).isNotNull()
    rescued = (F.col(parse.RESCUED).isNotNull() & ~rejected) if parse.RESCUED in typed.columns else F.lit(False)
    rows = (
        typed.groupBy(F.col("_source_file").alias("path"))
        .agg(F.unix_micros(F.min(parse.SOURCE_MODIFIED)).alias("modified"),
             F.count_if(~rejected).alias("good"), F.count_if(rejected).alias("bad"),
             F.count_if(rescued).alias("rescued"))
        .collect()
    )
    return [BatchFile(r["path"], r["modified"], r["good"], r["bad"], r["rescued"]) for r in rows]


def _csv_headers(spark: SparkSession, files: list[str], delimiter: str) -> dict[str, list[str]]:
    """Each file's header, by the file's path as the reader reports it: one line read on the
    driver per file, a few at a time."""
    def header(file: str) -> list[str]:
        return next(csv.reader([read_first_line(spark, file)], delimiter=delimiter), [])

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(zip(files, pool.map(header, files), strict=True))


def _files_already_in(catalog: TableCatalog, table: str, file_column: str, files: list[str],
                      source: str | None = None, modified: tuple[int, int] | None = None,
                      modified_column: str = parse.SOURCE_MODIFIED) -> set[str]:
    """Which of `files` `table` already holds rows of (the data's own record of what was ingested).

    `modified` (the earliest and latest modification time of `files`, in microseconds) narrows the read to the
    table's data files whose rows came from files modified then (Delta skips the others by
    their statistics; a path's are no help, Delta keeps only its first 32 characters): a file is
    known by its path and modification time, so one rewritten in place is a new file.
    """
    if not files or not catalog.exists(table):
        return set()
    rows = catalog.read(table)
    if modified is not None:
        earliest, latest = (F.timestamp_micros(F.lit(t)) for t in modified)
        rows = rows.filter(F.col(modified_column).between(earliest, latest))
    rows = rows.filter(F.col(file_column).isin(files))
    if source is not None:
        rows = rows.filter(F.col("source") == F.lit(source))
    return {row[0] for row in rows.select(file_column).distinct().collect()}


def _write_checked_batch(catalog: TableCatalog, name: str, table: str, checked: DataFrame,
                         types: dict[str, str], txn: BatchTxn, batch_id: int, summary: StepSummary) -> None:
    """Write rows checked by `parse.with_rejection_reason` (and `with_metadata`): the good ones to
    `table`, the others to the quarantine, each file's once (see `_write_typed_batch`)."""
    typed = _stored(checked.transform(parse.typed_rows, declared=types))
    try:
        _write_typed_batch(catalog, name, table, typed, _per_file(typed), txn, batch_id, summary)
    finally:
        _release(typed)


# Bronze keeps min/max statistics only for these columns (Delta's default is the first 32: for the
# demo's transactions that was every column, strings included: 1.1-1.9 of the bronze write's 8.7-10.5
# CPU seconds at 1M rows). Readers of bronze stream it in commit order (silver) or filter it on these:
# which files a batch already wrote (`_files_already_in`: `_source_modified_at`), when and in which
# batch rows arrived. Set when the table is created; an existing table keeps its statistics.
BRONZE_STATS_COLUMNS = ("_source_modified_at", "_ingested_at", "_batch_id")
_BRONZE_OPTIONS = {"delta.dataSkippingStatsColumns": ",".join(BRONZE_STATS_COLUMNS)}


def _write_logged_batch(catalog: TableCatalog, name: str, table: str, typed: DataFrame, logged: dict[str, int],
                        txn: BatchTxn, batch_id: int, summary: StepSummary) -> None:
    """`_write_typed_batch` for a batch whose files (`logged`: path -> modification time in ms)
    are known before its rows are read: the batch's counts (rows, rescued rows, the files with
    refused rows) are observed while the bronze write reads the rows (`DataFrame.observe`; classic
    sessions), not by a pass of their own; the quarantine is written only when that write saw refused rows."""
    files = [BatchFile(path, modified * 1000, 1, 1, 0) for path, modified in logged.items()]
    done_good = _files_already_in(catalog, table, "_source_file", list(logged), modified=_modified_range(files))
    new = ~F.col("_source_file").isin(list(done_good)) if done_good else F.lit(True)
    rejected = F.col(parse.REASON).isNotNull()
    rescued = (F.col(parse.RESCUED).isNotNull() & ~rejected) if parse.RESCUED in typed.columns else F.lit(False)
    # Spark Connect: whether a write command brings an observation's metrics back is not tested
    # here, so a Connect session counts the rows as a batch of unknown files does (`_per_file`).
    seen = None if is_connect(typed.sparkSession) else Observation(f"lakeboost_ingest_{name}_{batch_id}")
    observed = typed if seen is None else typed.observe(
        seen, F.count(F.lit(1)).alias("read"), F.count_if(rescued & new).alias("rescued"),
        F.collect_set(F.when(rejected, F.col("_source_file"))).alias("refused_files"))
    counted: dict | None = None
    written = 0
    if len(done_good) < len(logged):
        rows = observed.filter(new) if done_good else observed
        result = catalog.write(rows.transform(parse.bronze_of_typed), table,
                               txn=txn(f"lakeboost.ingest.{name}", batch_id), merge_schema=True,
                               extra_options=_BRONZE_OPTIONS)
        if result.version is not None:  # the write read the rows: the observation has them
            counted = dict(seen.get) if seen is not None else None
            written = result.rows_written
            summary.rows_written += written
            summary.versions[table] = result.version
    if counted is None:  # no bronze commit read the rows (all written before): counted here
        per_file = _per_file(typed)
        counted = {"read": sum(f.good + f.bad for f in per_file), "refused_files": [f.path for f in per_file if f.bad],
                   "rescued": sum(f.rescued for f in per_file if f.path not in done_good)}
    summary.rows_read += counted["read"]
    summary.rows_skipped += counted["read"] - written  # less what the quarantine commit writes
    if written:
        summary.details["rows_rescued"] = summary.details.get("rows_rescued", 0) + counted["rescued"]
    fault_point("ingest.after_bronze_commit", batch_id)
    refused = list(counted["refused_files"])
    quarantine = catalog.tables.bronze_quarantine
    done_bad = _files_already_in(catalog, quarantine, "source_file", refused, source=name)
    if done_good or done_bad:
        log.warning("source %s: rows of %d files already in bronze or the quarantine were skipped "
                    "(their checkpoint was lost or replaced)", name, len(done_good | done_bad))
    if any(f not in done_bad for f in refused):
        rows = typed.filter(~F.col("_source_file").isin(list(done_bad))) if done_bad else typed
        result = catalog.write(rows.transform(parse.quarantine_of_typed), quarantine,
                               txn=txn(f"lakeboost.ingest.{name}.quarantine", batch_id))
        if result.version is not None:
            summary.rows_quarantined += result.rows_written
            summary.rows_skipped -= result.rows_written
            summary.versions[quarantine] = result.version
    fault_point("ingest.after_quarantine_commit", batch_id)


def _write_typed_batch(catalog: TableCatalog, name: str, table: str, typed: DataFrame,
                       per_file: list[BatchFile], txn: BatchTxn, batch_id: int, summary: StepSummary) -> None:
    """One Delta commit of the batch's good rows to `table`, one of its refused rows to the
    quarantine (only when it has some), each idempotent; counts from the commits' own metrics.
    `per_file`: the batch's files and their rows, counted before.

    Rows of files a table already holds were written by an earlier query (the checkpoint was
    lost, deleted or replaced): they are skipped, so landing replayed from scratch adds nothing.
    """
    maybe_good = [f for f in per_file if f.good or f.header_drift]
    maybe_bad = [f for f in per_file if f.bad or f.header_drift]
    done_good = _files_already_in(catalog, table, "_source_file", [f.path for f in maybe_good],
                                  modified=_modified_range(maybe_good))
    quarantine = catalog.tables.bronze_quarantine
    done_bad = _files_already_in(catalog, quarantine, "source_file", [f.path for f in maybe_bad], source=name)
    if done_good or done_bad:
        log.warning("source %s: rows of %d files already in bronze or the quarantine were skipped "
                    "(their checkpoint was lost or replaced)", name, len(done_good | done_bad))
    read = sum(f.good + f.bad for f in per_file)
    summary.rows_read += read
    summary.rows_skipped += read  # less what the commits below write
    written = 0
    if any(f.path not in done_good for f in maybe_good):
        rows = typed.filter(~F.col("_source_file").isin(list(done_good))) if done_good else typed
        result = catalog.write(rows.transform(parse.bronze_of_typed), table,
                               txn=txn(f"lakeboost.ingest.{name}", batch_id), merge_schema=True,
                               extra_options=_BRONZE_OPTIONS)
        if result.version is not None:
            written = result.rows_written
            summary.rows_written += written
            summary.rows_skipped -= written
            summary.versions[table] = result.version
    if written:
        summary.details["rows_rescued"] = summary.details.get("rows_rescued", 0) + sum(
            f.rescued for f in per_file if f.path not in done_good)
    fault_point("ingest.after_bronze_commit", batch_id)
    if any(f.path not in done_bad for f in maybe_bad):
        rows = typed.filter(~F.col("_source_file").isin(list(done_bad))) if done_bad else typed
        result = catalog.write(rows.transform(parse.quarantine_of_typed), quarantine,
                               txn=txn(f"lakeboost.ingest.{name}.quarantine", batch_id))
        if result.version is not None:
            quarantined = result.rows_written
            summary.rows_quarantined += quarantined
            summary.rows_skipped -= quarantined
            summary.versions[quarantine] = result.version
    fault_point("ingest.after_quarantine_commit", batch_id)


def _modified_range(files: list[BatchFile]) -> tuple[int, int] | None:
    times = [f.modified for f in files if f.modified is not None]
    return (min(times), max(times)) if times and len(times) == len(files) else None


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

