"""Table catalog: naming, idempotent writes, latest-wins upserts that re-run as no-ops."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from chispa import assert_df_equality
from lakeboost.config.model import StorageConfig
from lakeboost.errors import TableNotFoundError
from lakeboost.io import TableCatalog
from lakeboost.io.hashing import with_content_hash
from pyspark.sql import SparkSession

SCHEMA = "k string, v int, payload string"


def _rows(spark: SparkSession, rows: list[tuple]):
    return spark.createDataFrame(rows, SCHEMA).transform(with_content_hash, columns=["k", "v", "payload"])


def test_names_resolve_to_paths_or_metastore_tables(spark: SparkSession, tmp_path: Path) -> None:
    by_path = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    by_name = TableCatalog(spark, StorageConfig(root=str(tmp_path), catalog="spark_catalog"))
    assert by_path.path("bronze.txns") == f"{tmp_path}/bronze/txns"
    assert by_path.sql_ref("bronze.txns") == f"delta.`{tmp_path}/bronze/txns`"
    assert by_name.identifier("bronze.txns") == "spark_catalog.bronze.txns"
    with pytest.raises(ValueError, match="must be '<layer>.<table>'"):
        by_path.path("Bronze-Txns")
    with pytest.raises(TableNotFoundError, match="table silver.none .* does not exist yet"):
        by_path.read("silver.none")


def test_metastore_mode_writes_and_reads_a_managed_table(either_spark: SparkSession, tmp_path: Path) -> None:
    spark = either_spark  # once classic, once over Spark Connect
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path), catalog="spark_catalog"))
    written = catalog.write(_rows(spark, [("a", 1, "x")]), "ops.metastore_demo", mode="overwrite")
    merged = catalog.upsert(_rows(spark, [("b", 2, "y")]), "ops.metastore_demo", keys=("k",), order_by=("v",),
                            user_metadata="merged")
    assert (written.version, merged.version, merged.operation) == (0, 1, "MERGE")
    assert catalog.last_user_metadata("ops.metastore_demo") == "merged"
    assert sorted(catalog.read("ops.metastore_demo").select("k").collect()) == [("a",), ("b",)]
    assert spark.catalog.tableExists("spark_catalog.ops.metastore_demo")


def test_user_metadata_reads_back_as_given_beside_each_writes_commit_token(either_spark: SparkSession,
                                                                          tmp_path: Path) -> None:
    spark = either_spark  # once classic, once over Spark Connect
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    marker = json.dumps({"lakeboost_integration": "orders", "spec": "0123abcd"}, sort_keys=True)

    catalog.write(_rows(spark, [("a", 1, "x")]), "silver.m", user_metadata="plain text")
    assert catalog.last_user_metadata("silver.m") == "plain text"
    catalog.upsert(_rows(spark, [("b", 2, "y")]), "silver.m", keys=("k",), order_by=("v",), user_metadata=marker)
    assert catalog.last_user_metadata("silver.m") == marker
    raw = json.loads(catalog.history("silver.m", 1).collect()[0]["userMetadata"])
    assert {k: raw[k] for k in json.loads(marker)} == json.loads(marker)  # a raw reader finds its keys
    assert re.fullmatch("[0-9a-f]{32}", raw.pop("lakeboost_commit")) and raw == json.loads(marker)
    catalog.set_properties("silver.m", {"a": "b"}, user_metadata=marker)
    assert catalog.last_user_metadata("silver.m") == marker
    catalog.write(_rows(spark, [("c", 3, "z")]), "silver.m")
    assert catalog.last_user_metadata("silver.m") is None
    # Text given as a raw writer option is kept untagged, as written; its commit is found by it.
    lineage = json.dumps({"versions": {"silver.x": 3}})
    raw_write = catalog.write(_rows(spark, [("d", 4, "w")]), "silver.m", extra_options={"userMetadata": lineage})
    assert raw_write.version == 4 and catalog.history("silver.m", 1).collect()[0]["userMetadata"] == lineage
    assert catalog.last_user_metadata("silver.m") == lineage


def test_transaction_ids_make_a_replayed_write_a_no_op(spark: SparkSession, tmp_path: Path) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    first = catalog.write(_rows(spark, [("a", 1, "x")]), "bronze.t", txn=("app", 7))
    replay = catalog.write(_rows(spark, [("a", 1, "x")]), "bronze.t", txn=("app", 7))
    assert (first.version, replay.version) == (0, None)
    assert catalog.read("bronze.t").count() == 1


def test_upsert_latest_wins_and_rerun_changes_nothing(either_spark: SparkSession, tmp_path: Path) -> None:
    spark = either_spark  # once classic, once over Spark Connect
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    catalog.upsert(_rows(spark, [("a", 1, "x"), ("b", 5, "y")]), "silver.t", keys=("k",), order_by=("v",))
    batch = _rows(spark, [("a", 2, "newer"), ("b", 4, "late-but-older"), ("c", 1, "new-key")])

    result = catalog.upsert(batch, "silver.t", keys=("k",), order_by=("v",))
    version = catalog.version("silver.t")
    rerun = catalog.upsert(batch, "silver.t", keys=("k",), order_by=("v",))

    assert_df_equality(
        catalog.read("silver.t").select("k", "v", "payload"),
        spark.createDataFrame([("a", 2, "newer"), ("b", 5, "y"), ("c", 1, "new-key")], SCHEMA),
        ignore_row_order=True, ignore_nullable=True)
    assert (result.metrics["numTargetRowsInserted"], result.metrics["numTargetRowsUpdated"]) == (1, 1)
    assert rerun.version is None
    history = catalog.history("silver.t").select("version", "operation").collect()
    assert [r.operation for r in sorted(history)][:2] == ["WRITE", "MERGE"]
    assert catalog.read("silver.t", version=version).count() == 3


def test_versions_and_commits_read_from_the_log_match_delta_history(spark: SparkSession, tmp_path: Path) -> None:
    from delta.tables import DeltaTable

    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    assert catalog.version("bronze.logged") is None
    results = [catalog.write(_rows(spark, [("a", 1, "x"), ("b", 2, "y")]), "bronze.logged", txn=("app", 0)),
               catalog.write(_rows(spark, [("c", 3, "z")]), "bronze.logged", txn=("app", 1)),
               catalog.write(_rows(spark, [("c", 3, "z")]), "bronze.logged", txn=("app", 1)),  # a replay: skipped
               catalog.write(_rows(spark, [("d", 4, "w")]), "bronze.logged", mode="overwrite")]

    history = {r["version"]: r for r in DeltaTable.forPath(spark, catalog.path("bronze.logged")).history().collect()}
    assert [r.version for r in results] == [0, 1, None, 2]
    for result in (r for r in results if r.version is not None):
        row = history[result.version]
        assert result.operation == row["operation"]
        assert result.metrics == {k: int(v) for k, v in row["operationMetrics"].items() if v.isdigit()}
    assert [r.rows_written for r in results] == [2, 1, 0, 1]
    assert catalog.version("bronze.logged") == max(history) == 2
    # Restores chain back to the data they restored: 3 restores 0, 5 restores 3 (so 0 again).
    table = DeltaTable.forPath(spark, catalog.path("bronze.logged"))
    table.restoreToVersion(0)
    catalog.write(_rows(spark, [("e", 5, "v")]), "bronze.logged")
    table.restoreToVersion(3)
    assert [catalog.content_version("bronze.logged", v) for v in range(6)] == [0, 1, 2, 0, 4, 0]
    assert catalog.content_version("bronze.logged") == 0 and catalog.content_version("bronze.missing") is None


def test_deltas_python_api_over_spark_connect_names_the_sql_to_use(connect_spark: SparkSession,
                                                                   tmp_path: Path) -> None:
    from lakeboost.errors import EnvironmentSetupError

    catalog = TableCatalog(connect_spark, StorageConfig(root=str(tmp_path)))
    with pytest.raises(EnvironmentSetupError, match=r"Delta's Python DeltaTable \(table silver.t\) needs a classic "
                                                    r"Spark session .* Use TableCatalog.history/merge_sql"):
        catalog.delta_table("silver.t")
