"""Bronze ingestion from files and JDBC: whole tables, metadata, quarantine, idempotency, drift."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from chispa import assert_df_equality
from lakeboost.config.tables import FrameworkTables
from lakeboost.errors import SchemaDriftError, SourceError
from lakeboost.ingest.bronze import BRONZE_STATS_COLUMNS, ingest_sources
from lakeboost.io import TableCatalog
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from tests.helpers import make_config, write_lines

QUARANTINE_TABLE = FrameworkTables().bronze_quarantine

TXN_SCHEMA = {"txn_id": "string", "customer_id": "bigint", "amount": "double", "event_time": "string"}
HEADER = "txn_id,customer_id,amount,event_time"


def csv_source(landing: Path) -> dict:
    return {"format": "csv", "path": str(landing / "txns"), "options": {"header": "true"},
            "schema": TXN_SCHEMA}


def test_csv_rows_land_typed_with_ingestion_metadata(spark: SparkSession, tmp_path: Path) -> None:
    write_lines(tmp_path / "landing/txns/day1.csv",
                [HEADER, "T1,10,12.5,2026-01-01T10:00:00+00:00", "T2,11,,2026-01-01T11:00:00+00:00"])
    config = make_config(tmp_path, {"txns": csv_source(tmp_path / "landing")})

    summary = ingest_sources(TableCatalog(spark, config.storage), config)

    bronze = TableCatalog(spark, config.storage).read("bronze.txns")
    expected = spark.createDataFrame(
        [("T1", 10, 12.5, "2026-01-01T10:00:00+00:00", "txns", "day1.csv", 0, 0),
         ("T2", 11, None, "2026-01-01T11:00:00+00:00", "txns", "day1.csv", 0, 1)],
        "txn_id string, customer_id bigint, amount double, event_time string, _source string, "
        "_source_file string, _batch_id bigint, _source_position bigint",
    )
    actual = (bronze.withColumn("_source_file", F.regexp_extract("_source_file", r"[^/]+$", 0))
              .drop("_ingested_at", "_source_modified_at"))
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    assert (summary.rows_read, summary.rows_written, summary.rows_quarantined) == (2, 2, 0)
    # Statistics only for the columns bronze is filtered on (Delta's default: the first 32 columns).
    log = Path(TableCatalog(spark, config.storage).path("bronze.txns"), "_delta_log")
    adds = [json.loads(line)["add"] for entry in sorted(log.glob("*.json"))
            for line in entry.read_text().splitlines() if '"add"' in line]
    assert adds and all(set(json.loads(a["stats"])["minValues"]) == set(BRONZE_STATS_COLUMNS) for a in adds)


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

    summary = ingest_sources(TableCatalog(spark, config.storage), config)

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

    ingest_sources(TableCatalog(spark, config.storage), config)

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
    ingest_sources(catalog, config)
    versions = (catalog.version("bronze.txns"), catalog.version(QUARANTINE_TABLE))

    again = ingest_sources(catalog, config)

    assert (again.rows_read, again.rows_written) == (0, 0)
    assert (catalog.version("bronze.txns"), catalog.version(QUARANTINE_TABLE)) == versions
    write_lines(landing / "txns/day2.csv", [HEADER, "T2,11,2.0,2026-01-02T10:00:00+00:00"])
    third = ingest_sources(catalog, config)
    assert third.rows_written == 1
    assert sorted(r.txn_id for r in catalog.read("bronze.txns").collect()) == ["T1", "T2"]
    assert catalog.read(QUARANTINE_TABLE).count() == 1


def test_a_renamed_quarantine_table_receives_the_malformed_rows(spark: SparkSession, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    write_lines(landing / "txns/day1.csv", [HEADER, "T1,10,1.0,2026-01-01T10:00:00+00:00", "bad"])
    config = make_config(tmp_path, {"txns": csv_source(landing)},
                         storage={"root": str(tmp_path / "lake"), "tables": {"bronze_quarantine": "bronze.rejects"}})

    catalog = TableCatalog(spark, config.storage)
    summary = ingest_sources(catalog, config)

    assert [r.raw_record for r in catalog.read("bronze.rejects").collect()] == ["bad"]
    assert "bronze.rejects" in summary.versions and not catalog.exists(QUARANTINE_TABLE)


def test_a_new_checkpoint_ingests_new_files_instead_of_skipping_them(spark: SparkSession, tmp_path: Path) -> None:
    # Deleting a checkpoint (to recover, or to move the source) restarts batch ids at 0. Delta
    # had recorded the old batches' ids for the same writer and would skip the new batch 0
    # without an error, so the writer's id changes with the checkpoint.
    landing = tmp_path / "landing"
    write_lines(landing / "txns/day1.csv", [HEADER, "T1,10,1.0,2026-01-01T10:00:00+00:00", "bad"])
    config = make_config(tmp_path, {"txns": csv_source(landing)})
    catalog = TableCatalog(spark, config.storage)
    ingest_sources(catalog, config)
    (landing / "txns/day1.csv").unlink()
    shutil.rmtree(catalog.checkpoint("bronze.txns", "ingest"))
    write_lines(landing / "txns/day2.csv", [HEADER, "T2,11,2.0,2026-01-02T10:00:00+00:00", "worse"])

    after = ingest_sources(catalog, config)

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
    ingest_sources(catalog, config)

    spark.createDataFrame([("M2", "grocery", "FR")], "merchant_id string, category string, country string") \
        .write.parquet(str(landing / "p2"))
    ingest_sources(catalog, config)
    rows = catalog.read("bronze.merchants").select("merchant_id", "category", "country")
    assert_df_equality(rows, spark.createDataFrame(
        [("M1", "fuel", None), ("M2", "grocery", "FR")], "merchant_id string, category string, country string"),
        ignore_row_order=True, ignore_nullable=True)

    other = tmp_path / "landing/other"
    spark.createDataFrame([("M3", 7)], "merchant_id string, category int").write.parquet(str(other))
    drifted = make_config(tmp_path, {"merchants": {"format": "parquet", "path": str(other)}})
    with pytest.raises(SchemaDriftError, match="column 'category' is string in bronze.merchants but int"):
        ingest_sources(TableCatalog(spark, drifted.storage), drifted)


def test_missing_path_is_a_source_error_and_writes_nothing(spark: SparkSession, tmp_path: Path) -> None:
    config = make_config(tmp_path, {"txns": csv_source(tmp_path / "nowhere")})
    with pytest.raises(SourceError, match=r"source 'txns': path .*nowhere/txns does not exist"):
        ingest_sources(TableCatalog(spark, config.storage), config)
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

    first = ingest_sources(catalog, config)
    version = catalog.version("bronze.customers")
    second = ingest_sources(catalog, config)

    assert (first.rows_read, first.rows_written) == (2, 2)
    assert second.rows_written == 0
    assert catalog.read("bronze.customers").count() == 2
    assert catalog.version("bronze.customers") == version
    _sqlite_customers(db, [(1, "a@new.com", "2026-01-05 00:00:00")])
    third = ingest_sources(catalog, config)
    # The high-water mark is inclusive: the row at the previous maximum is read again and
    # recognised by its content, the new one inserted.
    assert (third.rows_read, third.rows_written, third.rows_skipped) == (2, 1, 1)
    assert_df_equality(
        catalog.read("bronze.customers").select("customer_id", "email", "_batch_id"),
        spark.createDataFrame([(1, "a@x.com", 0), (2, "b@x.com", 0), (1, "a@new.com", 1)],
                              "customer_id int, email string, _batch_id bigint"),
        ignore_row_order=True, ignore_nullable=True)


def test_missing_sqlite_database_is_a_source_error(spark: SparkSession, tmp_path: Path) -> None:
    config = make_config(tmp_path, {"customers": {
        "format": "jdbc", "url": f"jdbc:sqlite:{tmp_path}/absent.db", "table": "customers"}})
    with pytest.raises(SourceError, match="source 'customers': SQLite database file .*absent.db does not exist"):
        ingest_sources(TableCatalog(spark, config.storage), config)


def test_unknown_jdbc_table_is_a_source_error(spark: SparkSession, tmp_path: Path) -> None:
    url = _sqlite_customers(tmp_path / "c.db", [])
    config = make_config(tmp_path, {"customers": {"format": "jdbc", "url": url, "table": "nope"}})
    with pytest.raises(SourceError, match="source 'customers': cannot read nope from jdbc:sqlite:.*no such table"):
        ingest_sources(TableCatalog(spark, config.storage), config)


def test_csv_header_in_another_order_is_read_by_name(spark: SparkSession, tmp_path: Path) -> None:
    # Spark's CSV reader assigns fields by position once a schema is given: without the mapping
    # by header name, T2's customer id would land in amount and its amount in customer_id.
    landing = tmp_path / "landing"
    write_lines(landing / "txns/day1.csv", [HEADER, "T1,10,1.5,2026-01-01T10:00:00+00:00"])
    write_lines(landing / "txns/day2.csv", ["amount,txn_id,event_time,customer_id",
                                            "2.5,T2,2026-01-02T10:00:00+00:00,11"])
    config = make_config(tmp_path, {"txns": csv_source(landing)})

    summary = ingest_sources(TableCatalog(spark, config.storage), config)

    assert_df_equality(
        TableCatalog(spark, config.storage).read("bronze.txns").select(*TXN_SCHEMA),
        spark.createDataFrame([("T1", 10, 1.5, "2026-01-01T10:00:00+00:00"),
                               ("T2", 11, 2.5, "2026-01-02T10:00:00+00:00")],
                              "txn_id string, customer_id bigint, amount double, event_time string"),
        ignore_row_order=True, ignore_nullable=True)
    assert (summary.rows_written, summary.rows_quarantined) == (2, 0)


def test_csv_header_naming_other_columns_quarantines_the_file_with_its_columns(
        spark: SparkSession, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    write_lines(landing / "txns/day1.csv", [HEADER, "T1,10,1.5,2026-01-01T10:00:00+00:00"])
    # A renamed column: same field count, so position would have read it as `amount`.
    write_lines(landing / "txns/day2.csv", ["txn_id,customer_id,value,event_time",
                                            "T2,11,2.5,2026-01-02T10:00:00+00:00"])
    config = make_config(tmp_path, {"txns": csv_source(landing)})

    summary = ingest_sources(TableCatalog(spark, config.storage), config)

    catalog = TableCatalog(spark, config.storage)
    assert [r.txn_id for r in catalog.read("bronze.txns").collect()] == ["T1"]
    (reason,) = [r.reason for r in catalog.read(QUARANTINE_TABLE).collect()]
    assert reason == (f"header_mismatch: file file:{landing}/txns/day2.csv has columns ['txn_id', 'customer_id', "
                      "'value', 'event_time'], the source declares ['txn_id', 'customer_id', 'amount', 'event_time'] "
                      "(missing ['amount'], unexpected ['value'])")
    assert (summary.rows_read, summary.rows_written, summary.rows_quarantined) == (2, 1, 1)


def test_one_batch_of_files_in_order_reordered_and_renamed_lands_each_row_once(
        spark: SparkSession, tmp_path: Path) -> None:
    # Rows are checked by position in one pass; the files whose header differs are checked again
    # by their header. Counts come from the Delta commits' metrics, not from counting the rows.
    landing = tmp_path / "landing"
    write_lines(landing / "txns/day1.csv", [HEADER, "T1,10,1.5,2026-01-01T10:00:00+00:00",
                                            "T2,abc,1.5,2026-01-01T10:00:00+00:00"])
    write_lines(landing / "txns/day2.csv", ["amount,txn_id,event_time,customer_id",
                                            "2.5,T3,2026-01-02T10:00:00+00:00,11", "x,T4,2026-01-02,12"])
    write_lines(landing / "txns/day3.csv", ["txn_id,customer_id,value,event_time",
                                            "T5,11,2.5,2026-01-02T10:00:00+00:00"])
    config = make_config(tmp_path, {"txns": csv_source(landing)})
    catalog = TableCatalog(spark, config.storage)

    summary = ingest_sources(catalog, config)

    bronze = catalog.read("bronze.txns")
    assert sorted((r.txn_id, r.customer_id, r.amount) for r in bronze.collect()) == [("T1", 10, 1.5),
                                                                                      ("T3", 11, 2.5)]
    reasons = sorted((r.source_file.rsplit("/", 1)[-1], r.reason.split(":")[0], r.reason.split(":")[1])
                     for r in catalog.read(QUARANTINE_TABLE).collect())
    assert reasons == [("day1.csv", "bad_value", " column customer_id"), ("day2.csv", "bad_value", " column amount"),
                       ("day3.csv", "header_mismatch", " file file")]
    assert (summary.rows_read, summary.rows_written, summary.rows_quarantined, summary.rows_skipped) == (
        5, bronze.count(), catalog.read(QUARANTINE_TABLE).count(), 0)


def test_json_fields_outside_the_schema_are_rescued_not_dropped(spark: SparkSession, tmp_path: Path) -> None:
    write_lines(tmp_path / "landing/cb/a.json", [
        '{"chargeback_id": "C1", "txn_id": "T1", "reported_at_ms": 1767225600000}',
        # `txn` renamed the declared `txn_id`; `meta` is a new nested field.
        '{"chargeback_id": "C2", "txn": "T2", "reported_at_ms": 1767225600001, "meta": {"k": [1, 2]}}',
        "",
    ])
    schema = {"chargeback_id": "string", "txn_id": "string", "reported_at_ms": "bigint"}
    config = make_config(tmp_path, {"cb": {"format": "json", "path": str(tmp_path / "landing/cb"),
                                           "schema": schema}})

    summary = ingest_sources(TableCatalog(spark, config.storage), config)

    assert_df_equality(
        TableCatalog(spark, config.storage).read("bronze.cb").select(*schema, "_rescued_data"),
        spark.createDataFrame([("C1", "T1", 1767225600000, None),
                               ("C2", None, 1767225600001, '{"txn":"T2","meta":"{\\"k\\":[1,2]}"}')],
                              "chargeback_id string, txn_id string, reported_at_ms bigint, _rescued_data string"),
        ignore_row_order=True, ignore_nullable=True)
    assert summary.details["cb"]["rows_rescued"] == 1


def test_multiline_json_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="options.multiLine: JSON sources are read as JSON lines"):
        make_config(tmp_path, {"cb": {"format": "json", "path": "cb", "options": {"multiLine": "true"},
                                      "schema": {"a": "string"}}})


def test_a_lost_checkpoint_with_the_same_files_in_landing_duplicates_nothing(
        spark: SparkSession, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    write_lines(landing / "txns/day1.csv", [HEADER, "T1,10,1.0,2026-01-01T10:00:00+00:00", "bad"])
    write_lines(landing / "txns/day2.csv", [HEADER, "T2,11,2.0,2026-01-02T10:00:00+00:00"])
    config = make_config(tmp_path, {"txns": csv_source(landing)})
    catalog = TableCatalog(spark, config.storage)
    ingest_sources(catalog, config)
    def snapshot(df):  # materialised now: a DataFrame over the table would read it later
        return spark.createDataFrame(df.collect(), df.schema)

    bronze_before = snapshot(catalog.read("bronze.txns").drop("_ingested_at", "_source_position"))
    quarantine_before = snapshot(catalog.read(QUARANTINE_TABLE).drop("ingested_at"))
    shutil.rmtree(catalog.checkpoint("bronze.txns", "ingest"))
    write_lines(landing / "txns/day3.csv", [HEADER, "T3,12,3.0,2026-01-03T10:00:00+00:00"])

    after = ingest_sources(TableCatalog(spark, config.storage), config)

    assert (after.rows_read, after.rows_written, after.rows_quarantined, after.rows_skipped) == (4, 1, 0, 3)
    bronze = catalog.read("bronze.txns")
    assert_df_equality(bronze.filter("txn_id != 'T3'").drop("_ingested_at", "_source_position"), bronze_before,
                       ignore_row_order=True, ignore_nullable=True)
    assert sorted(r.txn_id for r in bronze.collect()) == ["T1", "T2", "T3"]
    assert_df_equality(catalog.read(QUARANTINE_TABLE).drop("ingested_at"), quarantine_before,
                       ignore_row_order=True, ignore_nullable=True)


def test_rows_of_a_backlog_carry_their_arrival_order(spark: SparkSession, tmp_path: Path) -> None:
    landing = tmp_path / "landing/txns"
    older = write_lines(landing / "b_older.csv", [HEADER, "T1,10,1.0,2026-01-01T10:00:00+00:00",
                                                  "T2,10,2.0,2026-01-01T10:00:00+00:00"])
    newer = write_lines(landing / "a_newer.csv", [HEADER, "T1,10,3.0,2026-01-01T10:00:00+00:00"])
    os.utime(older, (1_700_000_000, 1_700_000_000))
    os.utime(newer, (1_700_000_100, 1_700_000_100))
    config = make_config(tmp_path, {"txns": csv_source(tmp_path / "landing")})

    ingest_sources(TableCatalog(spark, config.storage), config)

    rows = (TableCatalog(spark, config.storage).read("bronze.txns")
            .orderBy("_source_modified_at", "_source_position").select("txn_id", "amount").collect())
    assert [tuple(r) for r in rows] == [("T1", 1.0), ("T2", 2.0), ("T1", 3.0)]


def test_jdbc_row_written_later_at_the_high_water_mark_is_still_read(spark: SparkSession, tmp_path: Path) -> None:
    db = tmp_path / "landing/customers.db"
    url = _sqlite_customers(db, [(1, "a@x.com", "2026-01-01 00:00:00"), (2, "b@x.com", "2026-01-02 00:00:00")])
    config = make_config(tmp_path, {"customers": {
        "format": "jdbc", "url": url, "table": "customers", "incremental_column": "updated_at"}})
    catalog = TableCatalog(spark, config.storage)
    ingest_sources(catalog, config)
    # Committed after the first read, with the maximum's own timestamp (`>` would never read it).
    _sqlite_customers(db, [(3, "c@x.com", "2026-01-02 00:00:00")])

    again = ingest_sources(catalog, config)

    assert (again.rows_read, again.rows_written, again.rows_skipped) == (2, 1, 1)
    assert_df_equality(
        catalog.read("bronze.customers").select("customer_id", "email"),
        spark.createDataFrame([(1, "a@x.com"), (2, "b@x.com"), (3, "c@x.com")], "customer_id int, email string"),
        ignore_row_order=True, ignore_nullable=True)


def test_jdbc_cast_sends_values_that_do_not_convert_to_quarantine(spark: SparkSession, tmp_path: Path) -> None:
    first = tmp_path / "landing/v1.db"
    first.parent.mkdir(parents=True)
    with sqlite3.connect(first) as db:
        db.execute("CREATE TABLE stock (sku TEXT, qty INTEGER)")
        db.execute("INSERT INTO stock VALUES ('A', 1)")
    source = {"format": "jdbc", "url": f"jdbc:sqlite:{first}", "table": "stock", "on_type_change": "cast"}
    catalog = TableCatalog(spark, make_config(tmp_path).storage)
    ingest_sources(catalog, make_config(tmp_path, {"stock": source}))
    second = tmp_path / "landing/v2.db"  # the source's column became text
    with sqlite3.connect(second) as db:
        db.execute("CREATE TABLE stock (sku TEXT, qty TEXT)")
        db.executemany("INSERT INTO stock VALUES (?, ?)", [("B", "2"), ("C", "n/a"), ("D", "12 boxes")])
    drifted = make_config(tmp_path, {"stock": {**source, "url": f"jdbc:sqlite:{second}"}})

    summary = ingest_sources(TableCatalog(spark, drifted.storage), drifted)
    again = ingest_sources(TableCatalog(spark, drifted.storage), drifted)

    assert_df_equality(catalog.read("bronze.stock").select("sku", "qty"),
                       spark.createDataFrame([("A", 1), ("B", 2)], "sku string, qty int"),
                       ignore_row_order=True, ignore_nullable=True)
    assert_df_equality(
        catalog.read(QUARANTINE_TABLE).select("source", "raw_record", "reason"),
        spark.createDataFrame([
            ("stock", '{"sku":"C","qty":"n/a"}', "bad_value: column qty: 'n/a' is not a valid int"),
            ("stock", '{"sku":"D","qty":"12 boxes"}', "bad_value: column qty: '12 boxes' is not a valid int")],
            "source string, raw_record string, reason string"),
        ignore_row_order=True, ignore_nullable=True)
    assert (summary.rows_read, summary.rows_written, summary.rows_quarantined) == (3, 1, 2)
    assert (again.rows_written, again.rows_quarantined) == (0, 0)


def test_a_database_that_never_answers_fails_within_its_timeouts(spark: SparkSession, tmp_path: Path) -> None:
    import socket
    import threading
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True).start()
    port = server.getsockname()[1]
    config = make_config(tmp_path, {"customers": {
        "format": "jdbc", "url": f"jdbc:postgresql://127.0.0.1:{port}/db", "table": "customers",
        "user": "u", "password": "p", "timeouts": {"connect": "2s", "socket": "2s"}}})
    started = time.monotonic()
    try:
        with pytest.raises(SourceError, match=r"source 'customers': cannot read customers from "
                                              r"jdbc:postgresql://127.0.0.1:\d+/db: .*(timed out|timeout)"):
            ingest_sources(TableCatalog(spark, config.storage), config)
    finally:
        server.close()
        for conn in accepted:
            conn.close()
    assert accepted, "the fake database never saw the connection"
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(("url", "expected"), [
    ("jdbc:postgresql://h/db?user=u&password=s3cret&ssl=true", "jdbc:postgresql://h/db?user=***&password=***&ssl=true"),
    ("jdbc:snowflake://a.example/?token=tkn&accessToken=tk2&db=x", "jdbc:snowflake://a.example/?token=***&accessToken=***&db=x"),
    ("jdbc:awsathena://x;SecretAccessKey=sk;AccessKeyId=id;S3OutputLocation=s3://b",
     "jdbc:awsathena://x;SecretAccessKey=***;AccessKeyId=***;S3OutputLocation=s3://b"),
    ("jdbc:mysql://me:pw@h:3306/db", "jdbc:mysql://***@h:3306/db"),
    ("jdbc:sqlserver://h;databaseName=d;apiKey=k;authentication=ActiveDirectoryPassword",
     "jdbc:sqlserver://h;databaseName=d;apiKey=***;authentication=***"),
])
def test_redacted_urls_keep_no_credential(url: str, expected: str) -> None:
    from lakeboost.ingest.sources import redact_url

    assert redact_url(url) == expected


def test_parquet_cast_converts_each_value_and_quarantines_those_that_do_not(
        spark: SparkSession, tmp_path: Path) -> None:
    landing = tmp_path / "landing/stock"
    spark.createDataFrame([("A", 1)], "sku string, qty int").write.parquet(str(landing))
    config = make_config(tmp_path, {"stock": {"format": "parquet", "path": str(landing), "on_type_change": "cast"}})
    ingest_sources(TableCatalog(spark, config.storage), config)
    shutil.rmtree(landing)  # the source's files now carry qty as text
    spark.createDataFrame([("B", "2"), ("C", "n/a")], "sku string, qty string").coalesce(1).write.parquet(str(landing))

    summary = ingest_sources(TableCatalog(spark, config.storage), config)

    catalog = TableCatalog(spark, config.storage)
    assert_df_equality(catalog.read("bronze.stock").select("sku", "qty"),
                       spark.createDataFrame([("A", 1), ("B", 2)], "sku string, qty int"),
                       ignore_row_order=True, ignore_nullable=True)
    assert [(r.raw_record, r.reason) for r in catalog.read(QUARANTINE_TABLE).collect()] == [
        ('{"sku":"C","qty":"n/a"}', "bad_value: column qty: 'n/a' is not a valid int")]
    assert (summary.rows_written, summary.rows_quarantined) == (1, 1)


def test_spark_submit_echoes_its_command_without_credentials(tmp_path: Path) -> None:
    import subprocess

    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        ["./spark-submit.sh", "--master", "local[1]", "--conf", "spark.hadoop.fs.s3a.secret.key=S3-CANARY",
         "jobs/promote.py", "--help", "--set", "sources.customers.password=PW-CANARY",
         "--set", "sources.customers.url=jdbc:postgresql://h/db?user=me&password=URL-CANARY&ssl=true"],
        cwd=repo, capture_output=True, text=True, timeout=300)

    echoed = [line for line in done.stderr.splitlines() if line.startswith("spark-submit.sh: ")]
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(echoed) == 1 and "jobs/promote.py" in echoed[0]
    assert "sources.customers.password=***" in echoed[0] and "user=***&password=***&ssl=true" in echoed[0]
    assert not [c for c in ("S3-CANARY", "PW-CANARY", "URL-CANARY") if c in done.stderr + done.stdout]
