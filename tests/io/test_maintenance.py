"""OPTIMIZE/VACUUM: unsafe retention refused by default; time travel survives safe maintenance."""

from __future__ import annotations

from pathlib import Path

import pytest
from chispa import assert_df_equality
from lakeboost.config.features import MaintenanceConfig
from lakeboost.config.model import StorageConfig
from lakeboost.errors import ConfigError
from lakeboost.io import TableCatalog
from lakeboost.io.maintenance import maintain, vacuum
from pyspark.sql import SparkSession


def _data_files(table_dir: Path) -> set[str]:
    return {p.name for p in table_dir.glob("*.parquet")}


def test_vacuum_below_safe_retention_is_refused_unless_forced(either_spark: SparkSession, tmp_path: Path) -> None:
    spark = either_spark  # once classic, once over Spark Connect
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    catalog.write(spark.range(3), "silver.t")
    first = _data_files(tmp_path / "silver" / "t")
    catalog.write(spark.range(10, 12), "silver.t", mode="overwrite")  # the first files: unreferenced now
    current = _data_files(tmp_path / "silver" / "t") - first

    with pytest.raises(ConfigError, match=r"VACUUM silver.t with 0h retention refused: below Delta's safe 168h"):
        vacuum(catalog, "silver.t", 0)
    assert _data_files(tmp_path / "silver" / "t") == first | current  # refused: nothing deleted
    assert catalog.read("silver.t", version=0).count() == 3

    vacuum(catalog, "silver.t", 0, allow_unsafe=True)
    assert first and _data_files(tmp_path / "silver" / "t") == current  # forced: the old files are gone
    assert_df_equality(catalog.read("silver.t"), spark.range(10, 12), ignore_row_order=True, ignore_nullable=True)
    assert spark.conf.get("spark.databricks.delta.retentionDurationCheck.enabled") == "true"


def test_optimize_and_safe_vacuum_keep_time_travel(either_spark: SparkSession, tmp_path: Path) -> None:
    spark = either_spark  # once classic, once over Spark Connect
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    for i in range(3):
        catalog.write(spark.range(i * 10, i * 10 + 10).withColumnRenamed("id", "k"), "gold.t")

    summary = maintain(catalog, MaintenanceConfig(tables=("gold.t",), zorder={"gold.t": ("k",)}))

    assert summary.details["gold.t"]["files_removed"] >= 3
    history = [r.operation for r in catalog.history("gold.t").collect()]
    assert "OPTIMIZE" in history
    assert catalog.read("gold.t", version=0).count() == 10
    assert catalog.read("gold.t").count() == 30


def test_bronze_personal_data_is_blanked_after_its_retention_and_nothing_else(
        spark: SparkSession, tmp_path: Path) -> None:
    from lakeboost.config.silver import SilverConfig
    from lakeboost.io.maintenance import PURGED

    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    rows = spark.createDataFrame([
        ("T1", "old@x.com", "4111-1111-1111-1111", "FR", "2020-01-01 00:00:00"),
        ("T2", "new@x.com", "4222-2222-2222-2222", "DE", "2099-01-01 00:00:00"),
    ], "txn_id string, email string, card_number string, country string, ts string")
    catalog.write(rows.selectExpr("txn_id", "email", "card_number", "country",
                                  "CAST(ts AS TIMESTAMP) AS _ingested_at"), "bronze.txns")
    quarantined = spark.createDataFrame([("txns", "old raw line", "2020-01-01 00:00:00"),
                                         ("txns", "new raw line", "2099-01-01 00:00:00")],
                                        "source string, raw_record string, ts string")
    catalog.write(quarantined.selectExpr("source", "raw_record", "CAST(ts AS TIMESTAMP) AS ingested_at"),
                  "bronze.quarantine")
    silver = SilverConfig.model_validate({"tables": {"txns": {
        "source": "bronze.txns", "keys": ["txn_id"],
        "columns": {"txn_id": {"type": "string"}, "email": {"type": "string"}, "country": {"type": "string"},
                    "card": {"type": "string", "expr": "regexp_replace(card_number, '[^0-9]', '')"}},
        "pii": {"hash": ["email", "card"], "mask": {"card": 4}}}}})
    config = MaintenanceConfig(bronze_pii_retention="30d")

    summary = maintain(catalog, config, silver=silver)
    again = maintain(catalog, config, silver=silver)

    assert_df_equality(
        catalog.read("bronze.txns").drop("_ingested_at"),
        spark.createDataFrame([("T1", None, None, "FR"), ("T2", "new@x.com", "4222-2222-2222-2222", "DE")],
                              "txn_id string, email string, card_number string, country string"),
        ignore_row_order=True, ignore_nullable=True)
    assert sorted(r.raw_record for r in catalog.read("bronze.quarantine").collect()) == [PURGED, "new raw line"]
    assert summary.details["pii_rows_blanked"] == {"bronze.txns": 1, "bronze.quarantine": 1}
    assert again.details["pii_rows_blanked"] == {"bronze.txns": 0, "bronze.quarantine": 0}
