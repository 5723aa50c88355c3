"""The row content hash: the values stored in bronze, silver, predictions and monitoring tables
stay the ones the two former copies (ingest.parse.with_row_hash, refine.conform.with_content_hash,
identical bodies) computed, or every re-run would find each stored row changed."""

from __future__ import annotations

import datetime as dt

from lakeboost.io.hashing import ROW_HASH, with_content_hash
from pyspark.sql import SparkSession

# Computed with both former copies (equal) on ROWS below.
KNOWN = {"k1": "6e1daf0140e0d18d216b62720a9de75c644bec1e3099f41086c5ae1bd70b0cbf",
         "k2": "786cd3afab00a75e1caa8a44fdd90388354cf72f148f8245f2dccfd04c70487e"}
ROWS = [("k1", 3, None, dt.datetime(2026, 3, 2, 10, 30), 1.5), ("k2", None, "x y", None, None)]
SCHEMA = "k string, v int, `odd.name` string, ts timestamp, amount double"
COLUMNS = ["k", "v", "odd.name", "ts", "amount"]


def test_the_hash_of_a_row_is_the_value_earlier_releases_stored(spark: SparkSession) -> None:
    hashed = spark.createDataFrame(ROWS, SCHEMA).transform(with_content_hash, columns=COLUMNS)
    assert {r.k: r[ROW_HASH] for r in hashed.collect()} == KNOWN


def test_the_hash_follows_the_columns_given_and_their_order(spark: SparkSession) -> None:
    df = spark.createDataFrame(ROWS, SCHEMA)
    some = {r.k: r[ROW_HASH] for r in df.transform(with_content_hash, columns=["k", "v"]).collect()}
    swapped = {r.k: r[ROW_HASH] for r in df.transform(with_content_hash, columns=["v", "k"]).collect()}
    assert some["k1"] != KNOWN["k1"] and swapped["k1"] != some["k1"]
