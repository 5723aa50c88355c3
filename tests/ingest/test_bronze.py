"""Bronze ingestion from files and JDBC: whole tables, metadata, quarantine, idempotency, drift."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from chispa import assert_df_equality
from lakeboost.errors import SchemaDriftError, SourceError
from lakeboost.ingest.bronze import QUARANTINE_TABLE, ingest_sources
from lakeboost.io import TableCatalog
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from tests.helpers import make_config, write_lines

TXN_SCHEMA = {"txn_id": "string", "customer_id": "bigint", "amount": "double", "event_time": "string"}
HEADER = "txn_id,customer_id,amount,event_time"


def csv_source(landing: Path) -> dict:
    return {"format": "csv", "path": str(landing / "txns"), "options": {"header": "true"},
            "schema": TXN_SCHEMA}


def test_csv_rows_land_typed_with_ingestion_metadata(spark: SparkSession, tmp_path: Path) -> None:
    write_lines(tmp_path / "landing/txns/day1.csv",
                [HEADER, "T1,10,12.5,2026-01-01T10:00:00+00:00", "T2,11,,2026-01-01T11:00:00+00:00"])
    config = make_config(tmp_path, {"txns": csv_source(tmp_path / "landing")})

    summary = ingest_sources(spark, config)

    bronze = TableCatalog(spark, config.storage).read("bronze.txns")
    expected = spark.createDataFrame(
        [("T1", 10, 12.5, "2026-01-01T10:00:00+00:00", "txns", "day1.csv", 0),
         ("T2", 11, None, "2026-01-01T11:00:00+00:00", "txns", "day1.csv", 0)],
        "txn_id string, customer_id bigint, amount double, event_time string, _source string, "
        "_source_file string, _batch_id bigint",
    )
    actual = bronze.withColumn("_source_file", F.regexp_extract("_source_file", r"[^/]+$", 0)).drop("_ingested_at")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    assert (summary.rows_read, summary.rows_written, summary.rows_quarantined) == (2, 2, 0)


def test_malformed_rows_are_quarantined_with_reasons_and_none_lost(spark: SparkSession, tmp_path: Path) -> None:
    write_lines(tmp_path / "landing/txns/day1.csv", [
        HEADER,
        "T1,10,12.5,2026-01-01T10:00:00+00:00",
        "T2,11,12.3O,2026-01-01T11:00:00+00:00",        # unparsable amount
        "T3,12,5.0",                                    # a field missing
        "T4,13,1.0,2026-01-01T12:00:00+00:00,extra",    # an extra field
        "T5,abc,7.0,2026-01-01T13:00:00+00:00",         # unparsable bigint
    ])
    config = make_config(tmp_path, {"txns": csv_source(tmp_path / "landing")})

    summary = ingest_sources(spark, config)

    catalog = TableCatalog(spark, config.storage)
    quarantine = catalog.read(QUARANTINE_TABLE).select("source", "raw_record", "reason")
    expected = spark.createDataFrame([
        ("txns", "T2,11,12.3O,2026-01-01T11:00:00+00:00",
         "bad_value: column amount: '12.3O' is not a valid double"),
        ("txns", "T3,12,5.0", "field_count: expected 4 fields, found 3"),
        ("txns", "T4,13,1.0,2026-01-01T12:00:00+00:00,extra", "field_count: expected 4 fields, found 5"),
        ("txns", "T5,abc,7.0,2026-01-01T13:00:00+00:00",
         "bad_value: column customer_id: 'abc' is not a valid bigint"),
    ], "source string, raw_record string, reason string")
    # Rows without a parser error keep no raw line; the reconstructed record is JSON.
    normalised = quarantine.withColumn(
        "raw_record",
        F.when(F.col("raw_record").startswith("{"),
               F.concat_ws(",", *[F.get_json_object("raw_record", f"$.{c}") for c in TXN_SCHEMA]))
        .otherwise(F.col("raw_record")),
    )
    assert_df_equality(normalised, expected, ignore_row_order=True, ignore_nullable=True)
    assert catalog.read("bronze.txns").select("txn_id").collect() == [("T1",)]
    assert summary.rows_read == summary.rows_written + summary.rows_quarantined == 5


def test_truncated_json_is_quarantined(spark: SparkSession, tmp_path: Path) -> None:
    write_lines(tmp_path / "landing/cb/a.json", [
        '{"chargeback_id": "C1", "txn_id": "T1", "reported_at_ms": 1767225600000}',
        '{"chargeback_id": "C2", "txn_id": "T2", "reported_at_ms": 17672',
    ])
    schema = {"chargeback_id": "string", "txn_id": "string", "reported_at_ms": "bigint"}
    config = make_config(tmp_path, {"cb": {"format": "json", "path": str(tmp_path / "landing/cb"),
                                           "schema": schema}})

    ingest_sources(spark, config)

    catalog = TableCatalog(spark, config.storage)
    assert_df_equality(
        catalog.read("bronze.cb").select(*schema),
        spark.createDataFrame([("C1", "T1", 1767225600000)],
                              "chargeback_id string, txn_id string, reported_at_ms bigint"),
        ignore_nullable=True,
    )
    rejected = catalog.read(QUARANTINE_TABLE).select("raw_record", "reason").collect()
    assert rejected == [('{"chargeback_id": "C2", "txn_id": "T2", "reported_at_ms": 17672',
                         "malformed_json: not a complete JSON object")]


def test_rerun_over_same_files_adds_nothing_and_new_files_only_add_theirs(
        spark: SparkSession, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    write_lines(landing / "txns/day1.csv", [HEADER, "T1,10,1.0,2026-01-01T10:00:00+00:00", "bad"])
    config = make_config(tmp_path, {"txns": csv_source(landing)})
    catalog = TableCatalog(spark, config.storage)
    ingest_sources(spark, config)
    versions = (catalog.version("bronze.txns"), catalog.version(QUARANTINE_TABLE))

    again = ingest_sources(spark, config)

    assert (again.rows_read, again.rows_written) == (0, 0)
    assert (catalog.version("bronze.txns"), catalog.version(QUARANTINE_TABLE)) == versions
    write_lines(landing / "txns/day2.csv", [HEADER, "T2,11,2.0,2026-01-02T10:00:00+00:00"])
    third = ingest_sources(spark, config)
    assert third.rows_written == 1
    assert sorted(r.txn_id for r in catalog.read("bronze.txns").collect()) == ["T1", "T2"]
    assert catalog.read(QUARANTINE_TABLE).count() == 1


def test_a_new_checkpoint_ingests_new_files_instead_of_skipping_them(spark: SparkSession, tmp_path: Path) -> None:
    # Deleting a checkpoint (to recover, or to move the source) restarts batch ids at 0. Delta
    # had recorded the old batches' ids for the same writer and would skip the new batch 0
    # without an error, so the writer's id changes with the checkpoint.
    landing = tmp_path / "landing"
    write_lines(landing / "txns/day1.csv", [HEADER, "T1,10,1.0,2026-01-01T10:00:00+00:00", "bad"])
    config = make_config(tmp_path, {"txns": csv_source(landing)})
    catalog = TableCatalog(spark, config.storage)
    ingest_sources(spark, config)
    (landing / "txns/day1.csv").unlink()
    shutil.rmtree(catalog.checkpoint("bronze.txns", "ingest"))
    write_lines(landing / "txns/day2.csv", [HEADER, "T2,11,2.0,2026-01-02T10:00:00+00:00", "worse"])

    after = ingest_sources(spark, config)

    assert (after.rows_written, after.rows_quarantined) == (1, 1)
    assert sorted(r.txn_id for r in catalog.read("bronze.txns").collect()) == ["T1", "T2"]
    assert catalog.read(QUARANTINE_TABLE).count() == 2


def test_parquet_new_column_evolves_bronze_and_type_change_is_rejected(
        spark: SparkSession, tmp_path: Path) -> None:
    landing = tmp_path / "landing/merchants"
    spark.createDataFrame([("M1", "fuel")], "merchant_id string, category string") \
        .write.parquet(str(landing / "p1"))
    config = make_config(tmp_path, {"merchants": {"format": "parquet", "path": str(landing) + "/*"}})
    catalog = TableCatalog(spark, config.storage)
    ingest_sources(spark, config)

    spark.createDataFrame([("M2", "grocery", "FR")], "merchant_id string, category string, country string") \
        .write.parquet(str(landing / "p2"))
    ingest_sources(spark, config)
    rows = catalog.read("bronze.merchants").select("merchant_id", "category", "country")
    assert_df_equality(rows, spark.createDataFrame(
        [("M1", "fuel", None), ("M2", "grocery", "FR")], "merchant_id string, category string, country string"),
        ignore_row_order=True, ignore_nullable=True)

    other = tmp_path / "landing/other"
    spark.createDataFrame([("M3", 7)], "merchant_id string, category int").write.parquet(str(other))
    drifted = make_config(tmp_path, {"merchants": {"format": "parquet", "path": str(other)}})
    with pytest.raises(SchemaDriftError, match="column 'category' is string in bronze.merchants but int"):
        ingest_sources(spark, drifted)


def test_missing_path_is_a_source_error_and_writes_nothing(spark: SparkSession, tmp_path: Path) -> None:
    config = make_config(tmp_path, {"txns": csv_source(tmp_path / "nowhere")})
    with pytest.raises(SourceError, match=r"source 'txns': path .*nowhere/txns does not exist"):
        ingest_sources(spark, config)
    assert not TableCatalog(spark, config.storage).exists("bronze.txns")


def _sqlite_customers(path: Path, rows: list[tuple]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS customers (customer_id INTEGER, email TEXT, updated_at TEXT)")
        db.executemany("INSERT INTO customers VALUES (?, ?, ?)", rows)
    return f"jdbc:sqlite:{path}"


def test_jdbc_snapshot_is_ingested_once_and_new_rows_incrementally(spark: SparkSession, tmp_path: Path) -> None:
    db = tmp_path / "landing/customers.db"
    url = _sqlite_customers(db, [(1, "a@x.com", "2026-01-01 00:00:00"), (2, "b@x.com", "2026-01-02 00:00:00")])
    config = make_config(tmp_path, {"customers": {
        "format": "jdbc", "url": url, "table": "customers", "incremental_column": "updated_at",
        "partitioning": {"column": "customer_id", "lower_bound": 0, "upper_bound": 10, "num_partitions": 2}}})
    catalog = TableCatalog(spark, config.storage)

    first = ingest_sources(spark, config)
    version = catalog.version("bronze.customers")
    second = ingest_sources(spark, config)

    assert (first.rows_read, first.rows_written) == (2, 2)
    assert second.rows_written == 0
    assert catalog.read("bronze.customers").count() == 2
    assert catalog.version("bronze.customers") == version
    _sqlite_customers(db, [(1, "a@new.com", "2026-01-05 00:00:00")])
    third = ingest_sources(spark, config)
    assert (third.rows_read, third.rows_written) == (1, 1)
    assert_df_equality(
        catalog.read("bronze.customers").select("customer_id", "email", "_batch_id"),
        spark.createDataFrame([(1, "a@x.com", 0), (2, "b@x.com", 0), (1, "a@new.com", 1)],
                              "customer_id int, email string, _batch_id bigint"),
        ignore_row_order=True, ignore_nullable=True)


def test_missing_sqlite_database_is_a_source_error(spark: SparkSession, tmp_path: Path) -> None:
    config = make_config(tmp_path, {"customers": {
        "format": "jdbc", "url": f"jdbc:sqlite:{tmp_path}/absent.db", "table": "customers"}})
    with pytest.raises(SourceError, match="source 'customers': SQLite database file .*absent.db does not exist"):
        ingest_sources(spark, config)


def test_unknown_jdbc_table_is_a_source_error(spark: SparkSession, tmp_path: Path) -> None:
    url = _sqlite_customers(tmp_path / "c.db", [])
    config = make_config(tmp_path, {"customers": {"format": "jdbc", "url": url, "table": "nope"}})
    with pytest.raises(SourceError, match="source 'customers': cannot read nope from jdbc:sqlite:.*no such table"):
        ingest_sources(spark, config)
