"""JDBC ingestion against a real PostgreSQL server (started by .ci/run; skipped without one)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from chispa import assert_df_equality
from lakeboost.errors import SourceError
from lakeboost.ingest.bronze import ingest_sources
from lakeboost.io import TableCatalog
from pyspark.sql import SparkSession

from tests.helpers import make_config

PG_URL = os.environ.get("LAKEBOOST_TEST_PG_URL")
PG_USER = os.environ.get("LAKEBOOST_TEST_PG_USER")
PG_PASSWORD = os.environ.get("LAKEBOOST_TEST_PG_PASSWORD")
needs_postgres = pytest.mark.skipif(not PG_URL, reason="LAKEBOOST_TEST_PG_URL not set (scripts/start-postgres.sh)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.postgres
@needs_postgres
def test_partitioned_read_from_postgres_lands_once(spark: SparkSession, tmp_path: Path) -> None:
    rows = [(i, f"user{i}@example.com", f"2026-01-0{1 + i % 5} 00:00:00") for i in range(1, 41)]
    customers = spark.createDataFrame(rows, "customer_id int, email string, updated_at string")
    table = f"customers_{tmp_path.name[-12:].lower().replace('-', '_')}"
    (customers.write.format("jdbc").option("url", PG_URL).option("dbtable", table)
     .option("user", PG_USER).option("password", PG_PASSWORD)
     .option("driver", "org.postgresql.Driver").mode("overwrite").save())
    source = {"format": "jdbc", "url": PG_URL, "table": table, "user": PG_USER, "password": PG_PASSWORD,
              "partitioning": {"column": "customer_id", "lower_bound": 1, "upper_bound": 41, "num_partitions": 4}}
    config = make_config(tmp_path, {"customers": source})

    first = ingest_sources(TableCatalog(spark, config.storage), config)
    second = ingest_sources(TableCatalog(spark, config.storage), config)

    catalog = TableCatalog(spark, config.storage)
    bronze = catalog.read("bronze.customers")
    # The read was split four ways (one query per customer_id range, each a task writing its own
    # file of the first commit); the second run committed nothing.
    assert catalog.version("bronze.customers") == 0
    assert catalog.last_commit("bronze.customers").metrics["numFiles"] == 4
    assert_df_equality(bronze.select("customer_id", "email", "updated_at"), customers,
                       ignore_row_order=True, ignore_nullable=True)
    assert (first.rows_written, second.rows_written, second.rows_read) == (40, 0, 40)


@pytest.mark.postgres
@needs_postgres
def test_wrong_password_is_a_one_line_source_error_without_the_password(
        spark: SparkSession, tmp_path: Path) -> None:
    source = {"format": "jdbc", "url": PG_URL, "table": "anything", "user": PG_USER,
              "password": "wrong-canary-password"}
    config = make_config(tmp_path, {"customers": source})
    expected = r"source 'customers': cannot read anything .*password authentication failed"
    with pytest.raises(SourceError, match=expected) as err:
        ingest_sources(TableCatalog(spark, config.storage), config)
    assert "wrong-canary-password" not in str(err.value) and "\n" not in str(err.value)
    assert not TableCatalog(spark, config.storage).exists("bronze.customers")


def test_unreachable_database_is_a_source_error(spark: SparkSession, tmp_path: Path) -> None:
    url = f"jdbc:postgresql://127.0.0.1:{_free_port()}/nothing?connectTimeout=3"
    config = make_config(tmp_path, {"customers": {"format": "jdbc", "url": url, "table": "t"}})
    with pytest.raises(SourceError, match=r"source 'customers': cannot read t from jdbc:postgresql://127.0.0.1:\d+/nothing.*(refused|Connection)"):
        ingest_sources(TableCatalog(spark, config.storage), config)
