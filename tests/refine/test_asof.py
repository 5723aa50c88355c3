"""As-of joins on hand-made timelines."""

from __future__ import annotations

import numpy as np
import pytest
from chispa import assert_df_equality
from lakeboost.refine.asof import asof_join
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

TXNS = "txn string, customer_id bigint, t timestamp"
VERSIONS = "customer_id bigint, valid_from timestamp, country string"


def test_each_transaction_gets_the_version_valid_at_its_time(spark: SparkSession) -> None:
    txns = spark.createDataFrame([
        ("T1", 1, "2026-01-05 10:00:00"), ("T2", 1, "2026-01-20 10:00:00"),
        ("T3", 1, "2026-01-10 00:00:00"),   # exactly at the change: the new version (inclusive)
        ("T4", 2, "2026-01-01 00:00:00"),   # before any version of customer 2
        ("T5", 3, "2026-01-01 00:00:00"),   # no versions at all
    ], "txn string, customer_id bigint, t string").selectExpr("txn", "customer_id", "cast(t as timestamp) t")
    versions = spark.createDataFrame([
        (1, "2025-12-01 00:00:00", "GB"), (1, "2026-01-10 00:00:00", "FR"), (2, "2026-01-02 00:00:00", "DE"),
    ], "customer_id bigint, valid_from string, country string").selectExpr(
        "customer_id", "cast(valid_from as timestamp) valid_from", "country")

    joined = asof_join(txns, versions, on=["customer_id"], left_time="t", right_time="valid_from",
                       right_columns=["country"], prefix="c_")

    expected = spark.createDataFrame([
        ("T1", 1, "2026-01-05 10:00:00", "GB", "2025-12-01 00:00:00"),
        ("T2", 1, "2026-01-20 10:00:00", "FR", "2026-01-10 00:00:00"),
        ("T3", 1, "2026-01-10 00:00:00", "FR", "2026-01-10 00:00:00"),
        ("T4", 2, "2026-01-01 00:00:00", None, None),
        ("T5", 3, "2026-01-01 00:00:00", None, None),
    ], "txn string, customer_id bigint, t string, c_country string, c_asof_time string").selectExpr(
        "txn", "customer_id", "cast(t as timestamp) t", "c_country", "cast(c_asof_time as timestamp) c_asof_time")
    assert_df_equality(joined, expected, ignore_row_order=True, ignore_nullable=True)


def test_strict_join_never_uses_a_value_from_the_same_instant_and_max_age_expires(spark: SparkSession) -> None:
    labels = spark.sql("SELECT 'L1' txn, 1L customer_id, timestamp'2026-01-10 00:00:00' t "
                       "UNION ALL SELECT 'L2', 1L, timestamp'2026-03-01 00:00:00'")
    versions = spark.sql("SELECT 1L customer_id, timestamp'2026-01-01 00:00:00' valid_from, 'old' country "
                         "UNION ALL SELECT 1L, timestamp'2026-01-10 00:00:00', 'same-instant'")

    joined = asof_join(labels, versions, on=["customer_id"], left_time="t", right_time="valid_from",
                       right_columns=["country"], strict=True, max_age_seconds=30 * 86400)

    rows = {r.txn: r.country for r in joined.collect()}
    assert rows == {"L1": "old", "L2": None}


@pytest.mark.parametrize("strict", [False, True])
def test_a_keyless_time_line_matches_a_brute_force_oracle_across_day_buckets(spark: SparkSession,
                                                                            strict: bool) -> None:
    rng = np.random.default_rng(8)
    t0 = 1_767_225_600
    left_t = t0 + rng.integers(0, 5 * 86_400, 300)                      # five days: several buckets
    right_t = t0 - 7200 + np.sort(rng.choice(5 * 86_400 // 600, 400, replace=False)) * 600  # unique times
    left_t[:20] = right_t[:20]                                          # ties with right rows
    left = spark.createDataFrame([(i, int(t)) for i, t in enumerate(left_t)], "id long, t long") \
        .withColumn("t", F.timestamp_seconds("t"))
    right = spark.createDataFrame([(int(t), float(i)) for i, t in enumerate(right_t)], "rt long, v double") \
        .withColumn("rt", F.timestamp_seconds("rt"))
    max_age = 3 * 3600
    got = {r.id: r.v for r in asof_join(left, right, on=[], left_time="t", right_time="rt", right_columns=["v"],
                                        strict=strict, max_age_seconds=max_age).collect()}
    assert len(got) == 300
    for i, t in enumerate(left_t):
        earlier = [j for j, rt in enumerate(right_t) if (rt < t if strict else rt <= t)]
        expected = float(earlier[-1]) if earlier and t - right_t[earlier[-1]] <= max_age else None
        assert got[i] == expected, (i, t)
