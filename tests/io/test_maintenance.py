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


def test_vacuum_below_safe_retention_is_refused_unless_forced(spark: SparkSession, tmp_path: Path) -> None:
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


def test_optimize_and_safe_vacuum_keep_time_travel(spark: SparkSession, tmp_path: Path) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    for i in range(3):
        catalog.write(spark.range(i * 10, i * 10 + 10).withColumnRenamed("id", "k"), "gold.t")

    summary = maintain(catalog, MaintenanceConfig(tables=("gold.t",), zorder={"gold.t": ("k",)}))

    assert summary.details["gold.t"]["files_removed"] >= 3
    history = [r.operation for r in catalog.delta_table("gold.t").history().collect()]
    assert "OPTIMIZE" in history
    assert catalog.read("gold.t", version=0).count() == 10
    assert catalog.read("gold.t").count() == 30
