"""Silver refine over real bronze Delta tables: accounting, MERGE re-runs, contracts, PII."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from chispa import assert_df_equality
from lakeboost.config.tables import FrameworkTables
from lakeboost.errors import DataContractError, PiiKeyError
from lakeboost.io import TableCatalog
from lakeboost.refine.silver import refine_tables
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from tests.helpers import make_config

QUALITY, QUARANTINE = FrameworkTables().data_quality, FrameworkTables().silver_quarantine

CANARY_KEY = "canary-pii-key-7d1f0c2e9a"
BRONZE = "txn_id string, amount string, event_time string, email string, _source string, " \
         "_source_file string, _ingested_at string, _batch_id bigint, _source_modified_at string, " \
         "_source_position bigint"
TIME_FORMAT = "yyyy-MM-dd'T'HH:mm:ssXXX"


def silver_cfg(**overrides) -> dict:
    table = {
        "source": "bronze.txns", "keys": ["txn_id"], "order_by": ["_ingested_at"], "upper": ["txn_id"],
        "columns": {"txn_id": {"type": "string"}, "amount": {"type": "double"},
                    "event_time": {"type": "timestamp", "format": TIME_FORMAT},
                    "email": {"type": "string"}},
        "expectations": {"amount_positive": {"expr": "amount > 0", "action": "quarantine"},
                         "not_huge": {"expr": "amount < 10000", "action": "drop"},
                         "has_email": {"expr": "email IS NOT NULL", "action": "warn"}},
        "pii": {"hash": ["email"]},
    }
    table.update(overrides)
    return {"tables": {"txns": table}}


def bronze_rows(spark: SparkSession, rows: list[tuple], batch: int = 0, *, arrival: bool = True,
                ingested_day: int | None = None) -> DataFrame:
    """Bronze rows of ingest batch `batch`, read from file f<batch>.csv in this order (ingested on
    day `batch` + 1 unless given); `arrival=False` gives a bronze table from before the
    arrival-order columns (`_source_modified_at`, `_source_position`)."""
    day = f"2026-01-0{(batch + 1) if ingested_day is None else ingested_day}"
    stamped = [(*r, "txns", f"f{batch}.csv", f"{day} 00:00:00", batch, f"{day} 00:00:00", i)
               for i, r in enumerate(rows)]
    df = (spark.createDataFrame(stamped, BRONZE)
          .withColumn("_ingested_at", F.to_timestamp("_ingested_at"))
          .withColumn("_source_modified_at", F.to_timestamp("_source_modified_at")))
    return df if arrival else df.drop("_source_modified_at", "_source_position")


@pytest.fixture
def pii_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LAKEBOOST_PII_KEY", CANARY_KEY)
    return CANARY_KEY


def test_refine_accounts_for_every_row_and_rerun_changes_nothing(spark: SparkSession, tmp_path: Path,
                                                                 pii_key: str) -> None:
    config = make_config(tmp_path, silver=silver_cfg())
    catalog = TableCatalog(spark, config.storage)
    catalog.write(bronze_rows(spark, [
        ("t1", "12.0", "2026-01-01T10:00:00+01:00", "a@x.com"),
        ("T1", "10.0", "2026-01-01T10:00:00+01:00", "a@x.com"),   # same key after standardising, read later
        ("t2", "-5", "2026-01-01T11:00:00Z", "b@x.com"),           # quarantine: amount_positive
        ("t3", "99999", "2026-01-01T12:00:00Z", "c@x.com"),        # drop: not_huge
        ("t4", "5.0", "not a time", "d@x.com"),                    # conformance: bad timestamp
        (None, "5.0", "2026-01-01T12:00:00Z", "e@x.com"),          # conformance: null key
        ("t5", "7.0", "2026-01-01T13:00:00Z", None),               # warn only: kept
    ]), "bronze.txns")

    first = refine_tables(catalog, config)
    counts = first.details["txns"]
    version = catalog.version("silver.txns")
    second = refine_tables(catalog, config)

    assert counts["rows_in"] == 7
    assert (counts["inserted"], counts["unchanged_or_superseded"], counts["dropped"], counts["quarantined"]) == \
        (2, 1, 1, 3)
    assert counts["rows_in"] == counts["inserted"] + counts["updated"] + counts["unchanged_or_superseded"] + \
        counts["dropped"] + counts["quarantined"]
    assert second.rows_read == 0 and catalog.version("silver.txns") == version
    silver = catalog.read("silver.txns").select("txn_id", "amount", "event_time")
    expected = spark.createDataFrame([("T1", 10.0, "2026-01-01 09:00:00"), ("T5", 7.0, "2026-01-01 13:00:00")],
                                     "txn_id string, amount double, event_time string") \
        .withColumn("event_time", F.to_timestamp("event_time"))
    # T1's two versions tie on _ingested_at: the later row of the file wins (the row hash would keep 12.0).
    assert_df_equality(silver, expected, ignore_row_order=True, ignore_nullable=True)
    reasons = sorted(r.failed_rules for r in catalog.read(QUARANTINE).collect())
    assert reasons == ["amount_positive", f"event_time: value is not a valid timestamp (format {TIME_FORMAT})",
                       "key txn_id is null"]


def test_incremental_run_processes_only_new_bronze_rows_and_latest_wins(spark: SparkSession, tmp_path: Path,
                                                                        pii_key: str) -> None:
    config = make_config(tmp_path, silver=silver_cfg(expectations={}))
    catalog = TableCatalog(spark, config.storage)
    # Batch 0 from a bronze table older than the arrival-order columns; batch 1 has them (the
    # bronze schema grew) and ties with batch 0 on _ingested_at: the later batch still wins.
    catalog.write(bronze_rows(spark, [("t1", "1.0", "2026-01-01T00:00:00Z", "a@x.com")], batch=0, arrival=False),
                  "bronze.txns")
    refine_tables(catalog, config)
    catalog.write(bronze_rows(spark, [("t1", "2.0", "2026-01-01T00:00:00Z", "a@x.com"),
                                      ("t2", "3.0", "2026-01-02T00:00:00Z", "b@x.com")], batch=1, ingested_day=1),
                  "bronze.txns", merge_schema=True)

    second = refine_tables(catalog, config)

    assert second.details["txns"]["rows_in"] == 2
    assert (second.details["txns"]["inserted"], second.details["txns"]["updated"]) == (1, 1)
    rows = {r.txn_id: r.amount for r in catalog.read("silver.txns").collect()}
    assert rows == {"T1": 2.0, "T2": 3.0}
    rebuilt = refine_tables(catalog, config, full_rebuild=True)
    assert rebuilt.details["txns"]["rows_in"] == 3
    assert {r.txn_id: r.amount for r in catalog.read("silver.txns").collect()} == rows


ORDERS = "order_id string, status string, _source string, _source_file string, _ingested_at timestamp, " \
         "_batch_id bigint, _source_modified_at timestamp, _source_position bigint"


@pytest.mark.parametrize(("older", "newer", "order_by"), [
    ("orders_day1.csv", "orders_day2.csv", []),
    ("z_orders_day1.csv", "a_orders_day2.csv", ["_ingested_at"]),  # file names sort against their times
])
def test_backlog_batch_keeps_each_keys_later_version(spark: SparkSession, tmp_path: Path, older: str, newer: str,
                                                     order_by: list[str]) -> None:
    """A first run over a backlog: day 1's file (orders placed) and day 2's (the same orders
    delivered) were ingested together, one _ingested_at and _batch_id; day 2's file was modified
    later, though read first. Every order must end delivered."""
    config = make_config(tmp_path, silver={"tables": {"orders": {
        "source": "bronze.orders", "keys": ["order_id"], "order_by": order_by,
        "columns": {"order_id": {"type": "string"}, "status": {"type": "string"}}}}})
    catalog = TableCatalog(spark, config.storage)
    ingested, day1, day2 = (dt.datetime(2026, 1, 3, 6), dt.datetime(2026, 1, 1, 23), dt.datetime(2026, 1, 2, 23))
    keys = [f"O{i}" for i in range(1, 7)]
    delivered = [(k, "delivered", "orders", newer, ingested, 7, day2, i) for i, k in enumerate(keys)]
    placed = [(k, "placed", "orders", older, ingested, 7, day1, 6 + i) for i, k in enumerate(keys)]
    bronze = spark.createDataFrame(delivered + placed, ORDERS)
    catalog.write(bronze, "bronze.orders")

    refine_tables(catalog, config)

    silver = catalog.read("silver.orders")
    assert silver.columns == [*bronze.drop("_source").columns, "_row_hash"]
    expected = spark.createDataFrame(delivered, ORDERS).drop("_source")
    assert_df_equality(silver.drop("_row_hash"), expected, ignore_row_order=True, ignore_nullable=True)


def test_fail_rule_stops_before_anything_is_written(spark: SparkSession, tmp_path: Path, pii_key: str) -> None:
    config = make_config(tmp_path, silver=silver_cfg(
        expectations={"amount_positive": {"expr": "amount > 0", "action": "fail"}}))
    catalog = TableCatalog(spark, config.storage)
    catalog.write(bronze_rows(spark, [("t1", "1.0", "2026-01-01T00:00:00Z", "a@x.com"),
                                      ("t2", "-1.0", "2026-01-01T00:00:00Z", "b@x.com")]), "bronze.txns")

    with pytest.raises(DataContractError, match=r"silver.txns.*amount_positive.*amount > 0.*1 row.*T2"):
        refine_tables(catalog, config)

    for table in ("silver.txns", QUARANTINE, QUALITY):
        assert not catalog.exists(table)


def test_renamed_quarantine_and_quality_tables_receive_their_rows(spark: SparkSession, tmp_path: Path,
                                                                 pii_key: str) -> None:
    renamed = {"silver_quarantine": "silver.rejected_rows", "data_quality": "silver.contract_checks"}
    config = make_config(tmp_path, silver=silver_cfg(), storage={"root": str(tmp_path / "lake"), "tables": renamed})
    catalog = TableCatalog(spark, config.storage)
    catalog.write(bronze_rows(spark, [("t1", "1.0", "2026-01-01T00:00:00Z", "a@x.com"),
                                      ("t2", "-1.0", "2026-01-01T00:00:00Z", "b@x.com")]), "bronze.txns")

    refine_tables(catalog, config)

    assert [r.failed_rules for r in catalog.read("silver.rejected_rows").collect()] == ["amount_positive"]
    assert catalog.read("silver.contract_checks").filter("rule = 'amount_positive'").count() == 1
    assert not catalog.exists(QUARANTINE) and not catalog.exists(QUALITY)


def test_quality_metrics_table_records_each_rule_per_run(spark: SparkSession, tmp_path: Path, pii_key: str) -> None:
    config = make_config(tmp_path, silver=silver_cfg())
    catalog = TableCatalog(spark, config.storage)
    catalog.write(bronze_rows(spark, [("t1", "1.0", "2026-01-01T00:00:00Z", None),
                                      ("t2", "-1.0", "2026-01-01T00:00:00Z", "b@x.com")]), "bronze.txns")
    summary = refine_tables(catalog, config)

    metrics = catalog.read(QUALITY).select("run_id", "table", "rule", "action", "passed", "failed")
    run = summary.details["run_id"]
    expected = spark.createDataFrame([
        (run, "silver.txns", "_conformance", "quarantine", 2, 0),
        (run, "silver.txns", "amount_positive", "quarantine", 1, 1),
        (run, "silver.txns", "not_huge", "drop", 2, 0),
        (run, "silver.txns", "has_email", "warn", 1, 1),
    ], "run_id string, table string, rule string, action string, passed bigint, failed bigint")
    assert_df_equality(metrics, expected, ignore_row_order=True, ignore_nullable=True)


def test_missing_pii_key_is_an_error_not_an_unkeyed_hash(spark: SparkSession, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAKEBOOST_PII_KEY", raising=False)
    config = make_config(tmp_path, silver=silver_cfg())
    with pytest.raises(PiiKeyError, match="LAKEBOOST_PII_KEY"):
        refine_tables(TableCatalog(spark, config.storage), config)


def _event_log_sizes(spark: SparkSession) -> dict[Path, int]:
    folder = Path(spark.conf.get("spark.eventLog.dir").replace("file:", ""))
    return {p: p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def _event_log_since(spark: SparkSession, sizes: dict[Path, int]) -> bytes:
    """What the session's event log gained since `sizes` (the suite's other tests log there too)."""
    return b"".join(p.read_bytes()[sizes.get(p, 0):] for p in _event_log_sizes(spark))


def test_canary_key_never_reaches_tables_logs_or_plans(spark: SparkSession, tmp_path: Path, pii_key: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    config = make_config(tmp_path, silver=silver_cfg())
    catalog = TableCatalog(spark, config.storage)
    catalog.write(bronze_rows(spark, [("t1", "1.0", "2026-01-01T00:00:00Z", "a@x.com")]), "bronze.txns")
    before = _event_log_sizes(spark)

    refine_tables(catalog, config)

    hashed = catalog.read("silver.txns").first().email
    assert len(hashed) == 64 and hashed != "a@x.com"
    assert CANARY_KEY not in caplog.text
    files = [p for p in (tmp_path / "lake").rglob("*") if p.is_file()]
    assert files and not any(CANARY_KEY.encode() in p.read_bytes() for p in files)
    # The byte scan sees a clear value in a Delta data file (bronze's), so its silence on silver means something.
    assert any(b"a@x.com" in p.read_bytes() for p in files if "/bronze/" in str(p))
    assert not any(b"a@x.com" in p.read_bytes() for p in files if "/silver/" in str(p))
    # A literal in a query plan lands in the event log: had the key entered the hashing plan as a
    # literal, the scan below would find it. The probe shows it would.
    probe = f"plan-literal-probe-{tmp_path.name}"
    spark.range(1).select(F.sha2(F.concat(F.lit(probe), F.col("id").cast("string")), 256)).collect()
    logged = _event_log_since(spark, before)
    assert probe.encode() in logged, "a plan literal should reach the event log (else the key check is vacuous)"
    refine_plans = [line for line in logged.splitlines() if str(tmp_path).encode() in line]
    assert any(b"pii_hmac_sha256" in line for line in refine_plans), \
        "this refine's hashing plan should be in the event log (else the key check is vacuous)"
    assert CANARY_KEY.encode() not in logged
    assert CANARY_KEY.encode() not in _event_log_since(spark, {})
