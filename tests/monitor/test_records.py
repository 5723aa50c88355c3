"""The monitor's typed records: their row matches the monitoring table's schema, and the content
hash of a record is the one the dict records of earlier releases stored (re-runs stay no-ops)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from lakeboost.config.model import StorageConfig
from lakeboost.io import TableCatalog
from lakeboost.monitor.records import KEYS, SCHEMA, MonitorRecord, columns, write_records
from pyspark.sql import SparkSession

WEEK = dt.datetime(2026, 3, 2)
DRIFT = MonitorRecord("gold.p", WEEK, 3, "feature_drift", "amount", "psi", 0.31, 0.2, True, 500,
                      cause="the values moved higher than in training")
QUALITY = MonitorRecord("silver", WEEK, None, "data_quality", "transactions:amount_positive", "failure_rate",
                        0.0, 0.01, False, 10)
# Computed with monitor/job.py before records were typed (dict records, the same schema).
HASHES = {"amount": "b33dbcbd0d38993cd4dc4a225114ca51a64b004cb22f2c5eff3a89e9d93b162d",
          "transactions:amount_positive": "ce6ba7c35d6312e8af45b8c34f85eb4e059fd3b854a6cfe0e8f1bb3e628af5f8"}


def test_a_record_is_a_row_of_the_schema_in_field_order() -> None:
    assert columns() == tuple(f.name for f in dataclasses.fields(MonitorRecord))
    assert set(KEYS) <= set(columns())
    assert DRIFT.to_row()[:3] == ("gold.p", WEEK, 3) and len(DRIFT.to_row()) == len(SCHEMA.split(", "))
    assert DRIFT.as_dict()["cause"] == "the values moved higher than in training"


def test_written_records_keep_their_content_hash_and_a_rerun_changes_nothing(spark: SparkSession, tmp_path) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    assert write_records(catalog, "gold.monitoring", [DRIFT, QUALITY], run_id="r1") == 2
    stored = {r.subject: r._row_hash for r in catalog.read("gold.monitoring").collect()}
    assert stored == HASHES
    assert write_records(catalog, "gold.monitoring", [DRIFT, QUALITY], run_id="r2") == 0
    assert write_records(catalog, "gold.monitoring", [], run_id="r3") == 0


def test_a_table_written_before_slices_gets_the_column_and_a_rerun_still_writes_nothing(
        spark: SparkSession, tmp_path) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    assert write_records(catalog, "gold.monitoring", [DRIFT, QUALITY], run_id="r1") == 2
    # As an earlier release left it: no `slice` column.
    catalog.write(catalog.read("gold.monitoring").drop("slice"), "gold.old", mode="overwrite")
    assert "slice" not in catalog.read("gold.old").columns

    assert write_records(catalog, "gold.old", [DRIFT, QUALITY], run_id="r2") == 0
    stored = catalog.read("gold.old")
    assert sorted((r.subject, r.slice, r._row_hash) for r in stored.collect()) == sorted(
        (subject, "all", digest) for subject, digest in HASHES.items())
    # A slice of the same window is a record of its own, beside the whole window's.
    sliced = dataclasses.replace(DRIFT, slice="country=DE", value=0.5)
    assert write_records(catalog, "gold.old", [DRIFT, sliced], run_id="r3") == 1
    assert {(r.slice, r.value) for r in catalog.read("gold.old").filter("subject = 'amount'").collect()} == {
        ("all", 0.31), ("country=DE", 0.5)}
