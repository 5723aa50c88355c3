"""Kafka sources into bronze, exactly once, with the file sources' quarantine and drift rules.

Spark's Kafka source reads the topic (`subscribe` or `subscribePattern`); each micro-batch's
values are parsed from JSON or CSV against the declared schema as file sources' lines are
(lakeboost.ingest.parse: a value that does not parse or cast is a quarantine row with a reason;
JSON fields the schema does not declare are kept in `_rescued_data`). Every bronze row keeps
where it came from: `_kafka_key`, `_kafka_topic`, `_kafka_partition`, `_kafka_offset`,
`_kafka_timestamp` and `_kafka_headers`, beside the lineage every bronze row has
(`_source_file` is `kafka://<topic>/<partition>`, `_source_position` the offset,
`_source_modified_at` the record's timestamp).

Exactly once: the checkpoint records each batch's offset ranges before the batch runs, so a
batch replayed after a kill reads the same records; its Delta writes carry `txnAppId`/
`txnVersion` (spark.streams.BatchTxn), so a replayed batch that had committed is skipped by
Delta. Idempotency is also keyed on the data: rows whose (topic, partition, offset) bronze (or
the quarantine) already holds are not written again, so a lost checkpoint replaying the topic
from `starting_offsets` duplicates nothing.
"""

from __future__ import annotations

import logging
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeboost.config.durations import spark_interval
from lakeboost.config.model import KafkaSourceConfig
from lakeboost.errors import LakeboostError, SourceError
from lakeboost.faults import fault_point
from lakeboost.ingest import parse
from lakeboost.ingest.schema_drift import effective_types
from lakeboost.io.catalog import TableCatalog
from lakeboost.logs import StepSummary
from lakeboost.spark.streams import BatchLedger, BatchTxn, await_query

log = logging.getLogger(__name__)

KEY, TOPIC, PARTITION, OFFSET = "_kafka_key", "_kafka_topic", "_kafka_partition", "_kafka_offset"
TIMESTAMP, HEADERS = "_kafka_timestamp", "_kafka_headers"
# The lineage columns a Kafka source's bronze rows carry, with their types.
LINEAGE = {KEY: "string", TOPIC: "string", PARTITION: "int", OFFSET: "bigint", TIMESTAMP: "timestamp",
           HEADERS: "array<struct<key:string,value:string>>"}
RECORD = [TOPIC, PARTITION, OFFSET]  # a record's identity in Kafka
# How Spark's Kafka source says a subscribed topic does not exist.
_NO_TOPIC = ("UnknownTopicOrPartition", "does not host this topic-partition")


def kafka_reader_options(cfg: KafkaSourceConfig) -> dict[str, str]:
    """The options of Spark's Kafka source for this config (the config's own keys, then `options`)."""
    options = {
        "kafka.bootstrap.servers": cfg.bootstrap_servers,
        "startingOffsets": cfg.starting_offsets,
        "failOnDataLoss": str(cfg.fail_on_data_loss).lower(),
        "includeHeaders": "true",
        **({"subscribe": cfg.topic} if cfg.topic else {"subscribePattern": str(cfg.topic_pattern)}),
        **({"maxOffsetsPerTrigger": str(cfg.max_offsets_per_trigger)} if cfg.max_offsets_per_trigger else {}),
    }
    return {**options, **cfg.options}


def value_fields(value: Column, *, declared: dict[str, str], value_format: str,
                 options: dict[str, str]) -> list[Column]:
    """A record value's declared fields as strings, the corrupt-record column (the raw value when
    it is not one record of the format) and, for JSON, `_rescued_data`."""
    if value_format == "json":
        return parse.json_fields(value, declared, options)
    ddl = parse.string_read_schema(declared).simpleString()
    parsed = F.from_csv(value, ddl, {**options, "mode": "PERMISSIVE", "columnNameOfCorruptRecord": parse.CORRUPT})
    return [parsed[c].alias(c) for c in [*declared, parse.CORRUPT]]


def kafka_rows(records: DataFrame, *, declared: dict[str, str], value_format: str,
               options: dict[str, str]) -> DataFrame:
    """Spark's Kafka records (key, value, topic, partition, offset, timestamp, headers) as the
    declared fields of their values plus the Kafka lineage columns."""
    value = F.col("value").cast("string")
    headers = F.transform(F.col("headers"), lambda h: F.struct(h["key"].alias("key"),
                                                               h["value"].cast("string").alias("value")))
    return records.select(
        *value_fields(value, declared=declared, value_format=value_format, options=options),
        F.col("key").cast("string").alias(KEY),
        F.col("topic").alias(TOPIC),
        F.col("partition").alias(PARTITION),
        F.col("offset").alias(OFFSET),
        F.col("timestamp").alias(TIMESTAMP),
        headers.cast(LINEAGE[HEADERS]).alias(HEADERS),
    )


def read_kafka_stream(spark: SparkSession, name: str, cfg: KafkaSourceConfig) -> DataFrame:
    """The source's records as a streaming DataFrame of declared fields (strings) and lineage."""
    records = spark.readStream.format("kafka").options(**kafka_reader_options(cfg)).load()
    return kafka_rows(records, declared=dict(cfg.declared_schema), value_format=cfg.value_format,
                      options=dict(cfg.value_options))


def checked_rows(batch: DataFrame, *, name: str, declared: dict[str, str], value_format: str,
                 delimiter: str, batch_id: int) -> DataFrame:
    """A batch's rows with the ingestion metadata and `_rejection_reason` (null: a good row)."""
    source_file = F.concat(F.lit("kafka://"), F.col(TOPIC), F.lit("/"), F.col(PARTITION).cast("string"))
    return (
        batch.transform(parse.with_metadata, source=name, source_file=source_file, batch_id=batch_id,
                        source_modified=F.col(TIMESTAMP))
        .withColumn(parse.SOURCE_POSITION, F.col(OFFSET))
        .transform(parse.with_rejection_reason, declared=declared, fmt=value_format, delimiter=delimiter)
    )


def ingest_kafka(
    spark: SparkSession, catalog: TableCatalog, name: str, cfg: KafkaSourceConfig, *,
    continuous: bool = False, timeout_seconds: float | None = None,
) -> StepSummary:
    """Run the Kafka source's stream: until it has caught up (`available_now`), or for
    `timeout_seconds` when continuous (`trigger: processing_time` or `continuous=True`)."""
    table = f"bronze.{name}"
    existing = catalog.read(table).schema if catalog.exists(table) else None
    types = effective_types(source=name, table=table, incoming=dict(cfg.declared_schema), existing=existing,
                            on_type_change=cfg.on_type_change)
    summary = StepSummary(f"ingest:{name}")
    checkpoint = catalog.checkpoint(table, "ingest")
    txn = BatchTxn(spark, checkpoint)
    delimiter = cfg.value_options.get("sep", cfg.value_options.get("delimiter", ","))

    def write_batch(batch: DataFrame, batch_id: int) -> None:
        checked = checked_rows(batch, name=name, declared=types, value_format=cfg.value_format,
                               delimiter=delimiter, batch_id=batch_id).persist()
        try:
            _write_batch(catalog, name, table, checked, types, txn, batch_id, summary)
        finally:
            checked.unpersist()

    ledger = BatchLedger(spark, checkpoint, summary)
    writer = (
        read_kafka_stream(spark, name, cfg).writeStream.foreachBatch(ledger.wrap(write_batch))
        .option("checkpointLocation", checkpoint)
        .queryName(f"ingest_{name}")
    )
    run_continuously = continuous or cfg.trigger == "processing_time"
    writer = writer.trigger(processingTime=spark_interval(cfg.interval)) if run_continuously \
        else writer.trigger(availableNow=True)
    try:
        await_query(writer.start(), f"source {name!r}: Kafka ingest stream",
                    timeout_seconds if run_continuously else None)
    except LakeboostError as exc:
        if cfg.topic and any(text in str(exc) for text in _NO_TOPIC):
            raise SourceError(
                f"source {name!r}: topic {cfg.topic} does not exist on {cfg.bootstrap_servers}; produce to it "
                "(or create it) first, or subscribe with `topic_pattern`, which waits for matching topics"
            ) from None
        raise
    ledger.settle()
    return summary


def _in_ranges(ranges: list[tuple[str, int, int, int]]) -> Column:
    """Rows whose (topic, partition) is one of `ranges` and whose offset lies within it."""
    return reduce(lambda a, b: a | b, [
        (F.col(TOPIC) == F.lit(t)) & (F.col(PARTITION) == F.lit(p)) & F.col(OFFSET).between(lo, hi)
        for t, p, lo, hi in ranges])


def _write_batch(catalog: TableCatalog, name: str, table: str, checked: DataFrame, types: dict[str, str],
                 txn: BatchTxn, batch_id: int, summary: StepSummary) -> None:
    good_flag = F.col(parse.REASON).isNull()
    rescued = F.col(parse.RESCUED).isNotNull() if parse.RESCUED in checked.columns else F.lit(False)
    # One row per (topic, partition, good): the batch's offset ranges and counts.
    parts = (checked.groupBy(TOPIC, PARTITION, good_flag.alias("good"))
             .agg(F.min(OFFSET).alias("lo"), F.max(OFFSET).alias("hi"), F.count(F.lit(1)).alias("n"),
                  F.sum(rescued.cast("int")).alias("rescued"))
             .collect())
    good_rows = checked.filter(good_flag)
    bad_rows = (checked.filter(~good_flag)
                .withColumn("_source_file", F.format_string("kafka://%s/%d@%d", F.col(TOPIC), F.col(PARTITION),
                                                            F.col(OFFSET))))
    good = sum(r["n"] for r in parts if r["good"])
    bad = sum(r["n"] for r in parts if not r["good"])
    good_ranges = [(r[TOPIC], r[PARTITION], r["lo"], r["hi"]) for r in parts if r["good"]]
    # Records an earlier query already wrote (its checkpoint was lost or replaced): not again.
    if good_ranges and catalog.exists(table):
        done = catalog.read(table).filter(_in_ranges(good_ranges)).select(*RECORD)
        if not done.isEmpty():
            good_rows = good_rows.join(done, on=RECORD, how="left_anti").persist()
            replayed = good - good_rows.count()
            summary.rows_skipped += replayed
            log.warning("source %s: %d records already in %s were skipped (their checkpoint was lost "
                        "or replaced)", name, replayed, table)
            good -= replayed
    quarantine = catalog.tables.bronze_quarantine
    if bad and catalog.exists(quarantine):
        done_bad = (catalog.read(quarantine).filter((F.col("source") == F.lit(name))
                                                    & F.col("source_file").startswith("kafka://"))
                    .select(F.col("source_file").alias("_source_file")))
        kept = bad_rows.join(done_bad, on="_source_file", how="left_anti").persist()
        replayed_bad = bad - kept.count()
        bad_rows, bad = kept, bad - replayed_bad
        summary.rows_skipped += replayed_bad
    summary.rows_read += sum(r["n"] for r in parts)
    lineage_typed = {**types, **LINEAGE}
    if good:
        result = catalog.write(parse.bronze_rows(good_rows, declared=lineage_typed), table,
                               txn=txn(f"lakeboost.ingest.{name}", batch_id), merge_schema=True)
        if result.version is not None:
            summary.rows_written += good
            summary.details["rows_rescued"] = summary.details.get("rows_rescued", 0) + sum(
                r["rescued"] or 0 for r in parts if r["good"])
            summary.versions[table] = result.version
        else:
            summary.rows_skipped += good
    fault_point("ingest.kafka.after_bronze_commit", batch_id)
    if bad:
        result = catalog.write(parse.quarantine_rows(bad_rows, declared=types), quarantine,
                               txn=txn(f"lakeboost.ingest.{name}.quarantine", batch_id))
        if result.version is not None:
            summary.rows_quarantined += bad
            summary.versions[quarantine] = result.version
        else:
            summary.rows_skipped += bad
    fault_point("ingest.kafka.after_quarantine_commit", batch_id)
    good_rows.unpersist()
    bad_rows.unpersist()
