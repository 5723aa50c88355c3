"""Conformance: casting with reported failures, standardisation, null keys, latest-per-key."""

from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality
from lakeboost.config.silver import SilverTableConfig
from lakeboost.io.hashing import with_content_hash
from lakeboost.refine.conform import conform, latest_per_key, with_null_key_errors
from pyspark.sql import SparkSession

AT = "yyyy-MM-dd'T'HH:mm:ssXXX"
TABLE = SilverTableConfig.model_validate({
    "source": "bronze.t", "keys": ["id"], "upper": ["country"], "lower": ["email"],
    "columns": {
        "id": {"type": "string"},
        "amount": {"type": "double"},
        "at": {"type": "timestamp", "format": AT},
        "email": {"type": "string"},
        "country": {"type": "string"},
        "cents": {"type": "bigint", "expr": "amount * 100"},
    },
})


def test_conform_types_standardises_and_reports_columns_that_do_not_cast(spark: SparkSession) -> None:
    bronze = spark.createDataFrame([
        ("A", "1.5", "2026-01-01T10:00:00+02:00", " Ann@X.com ", " gb"),
        ("B", "1,5", "2026-01-01T10:00:00Z", "", "fr"),          # comma decimal
        ("C", None, "yesterday", None, None),                    # unparsable time, null amount
    ], "id string, amount string, at string, email string, country string")

    out = conform(bronze, table=TABLE)

    expected = spark.createDataFrame([
        ("A", 1.5, "2026-01-01 08:00:00", "ann@x.com", "GB", 150, []),
        ("B", None, "2026-01-01 10:00:00", None, "FR", None, ["amount: value is not a valid double"]),
        ("C", None, None, None, None, None, [f"at: value is not a valid timestamp (format {AT})"]),
    ], "id string, amount double, at string, email string, country string, cents bigint, _cast_errors array<string>")
    expected = expected.selectExpr("id", "amount", "cast(at as timestamp) at", "email", "country", "cents",
                                   "_cast_errors")
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)


def test_null_keys_are_conformance_errors(spark: SparkSession) -> None:
    df = spark.createDataFrame([("A", []), (None, ["x"])], "id string, _cast_errors array<string>")
    rows = {r.id: r._cast_errors for r in with_null_key_errors(df, keys=("id",)).collect()}
    assert rows == {"A": [], None: ["x", "key id is null"]}


def test_latest_per_key_keeps_newest_and_breaks_ties_deterministically(spark: SparkSession) -> None:
    df = spark.createDataFrame([
        ("K1", 1, "old"), ("K1", 3, "new"), ("K1", 2, "mid"),
        ("K2", 5, "a"), ("K2", 5, "b"),              # tie on the ordering column
        ("K3", None, "only"),
    ], "k string, v int, payload string").transform(with_content_hash, columns=["k", "v", "payload"])

    first = latest_per_key(df, keys=("k",), order_by=("v",)).select("k", "payload")
    again = latest_per_key(df.repartition(3), keys=("k",), order_by=("v",)).select("k", "payload")

    winners = {r.k: r.payload for r in first.collect()}
    assert winners["K1"] == "new" and winners["K3"] == "only" and winners["K2"] in {"a", "b"}
    assert_df_equality(first, again, ignore_row_order=True)


ARRIVALS = "k string, v int, payload string, _batch_id bigint, _source_modified_at timestamp, " \
           "_source_file string, _source_position bigint"
DAY1, DAY2 = dt.datetime(2026, 1, 1, 6), dt.datetime(2026, 1, 2, 6)
OLD = "old26"  # for every key below, this version's row hash sorts above the newer one's


def test_latest_per_key_without_order_by_keeps_the_latest_arrival(spark: SparkSession) -> None:
    df = spark.createDataFrame([
        ("K1", None, OLD, 0, DAY1, "b.csv", 0), ("K1", None, "new", 0, DAY2, "a.csv", 5),  # file time
        ("K2", None, OLD, 0, DAY1, "a.csv", 0), ("K2", None, "new", 0, DAY1, "b.csv", 1),  # file name
        ("K3", None, OLD, 0, DAY1, "a.csv", 1), ("K3", None, "new", 0, DAY1, "a.csv", 2),  # position
        ("K4", None, OLD, 3, DAY2, "b.csv", 9), ("K4", None, "new", 4, DAY1, "a.csv", 0),  # batch first
        ("K5", None, OLD, 0, None, "a.csv", 7), ("K5", None, "new", 0, DAY1, "a.csv", 0),  # NULL is oldest
    ], ARRIVALS).transform(with_content_hash, columns=["k", "payload"])

    latest = latest_per_key(df.repartition(3), keys=("k",), order_by=()).select("k", "payload")

    expected = spark.createDataFrame([(f"K{i}", "new") for i in range(1, 6)], "k string, payload string")
    assert_df_equality(latest, expected, ignore_row_order=True)
    # Without the arrival columns (an older bronze table) the hash decides, and would keep OLD.
    by_hash = latest_per_key(df.select("k", "payload", "_row_hash"), keys=("k",), order_by=())
    assert {r.payload for r in by_hash.collect()} == {OLD}


def test_latest_per_key_breaks_order_by_ties_by_arrival_before_the_hash(spark: SparkSession) -> None:
    df = spark.createDataFrame([
        ("K1", 2, "old0", 0, DAY1, "a.csv", 0), ("K1", 2, "new", 0, DAY2, "a.csv", 0),  # tie on v: arrival
        ("K2", 3, "higher", 0, DAY1, "a.csv", 0), ("K2", 1, "later", 0, DAY2, "b.csv", 0),  # v decides
        ("K3", None, "null", 0, DAY2, "a.csv", 0), ("K3", 1, "set", 0, DAY1, "a.csv", 0),  # NULL v is oldest
    ], ARRIVALS).transform(with_content_hash, columns=["k", "v", "payload"])

    latest = latest_per_key(df, keys=("k",), order_by=("v",)).select("k", "payload")

    expected = spark.createDataFrame([("K1", "new"), ("K2", "higher"), ("K3", "set")], "k string, payload string")
    assert_df_equality(latest, expected, ignore_row_order=True)
    by_hash = latest_per_key(df.drop("_source_modified_at"), keys=("k",), order_by=("v",)).filter("k = 'K1'")
    assert by_hash.first().payload == "old0"  # the hash alone (same batch, file, position) keeps the older
