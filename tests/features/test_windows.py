"""Window features on a hand-made timeline: [t - w, t) frames, one shuffle per entity."""

from __future__ import annotations

from chispa import assert_df_equality
from lakeboost.config.features import WindowGroup
from lakeboost.features.windows import with_window_features
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

GROUP = WindowGroup(entity="c", windows=("1h", "1d"), aggs={"amt": ("sum", "max", "distinct_count")},
                    last_value=("country",), time_since_last=True)


def test_windows_cover_the_past_only_with_exclusive_upper_bound(spark: SparkSession) -> None:
    events = spark.createDataFrame([
        ("e1", 1, "2026-01-01 10:00:00", 10.0, "GB"),
        ("e2", 1, "2026-01-01 10:30:00", 20.0, "GB"),
        ("e3", 1, "2026-01-01 11:00:00", 5.0, "FR"),    # e1 exactly 1h before: inside [t-1h, t)
        ("e4", 1, "2026-01-01 11:00:00", 7.0, "FR"),    # same second as e3: neither sees the other
        ("e5", 1, "2026-01-02 10:30:00", 1.0, "FR"),    # e2 exactly 1d before: inside; e1 outside
        ("e6", 2, "2026-01-01 10:00:00", 99.0, "DE"),   # another customer: sees nothing of c=1
    ], "id string, c int, t string, amt double, country string").withColumn("t", F.to_timestamp("t"))

    out = with_window_features(events, groups={"cust": GROUP}, timestamp="t").select(
        "id", "cust_count_1h", "cust_amt_sum_1h", "cust_count_1d", "cust_amt_sum_1d", "cust_amt_max_1d",
        "cust_amt_distinct_count_1d", "cust_prev_country", "cust_country_changed", "cust_seconds_since_last")

    expected = spark.createDataFrame([
        ("e1", 0, None, 0, None, None, 0, None, None, None),
        ("e2", 1, 10.0, 1, 10.0, 10.0, 1, "GB", 0, 1800.0),
        ("e3", 2, 30.0, 2, 30.0, 20.0, 2, "GB", 1, 1800.0),
        ("e4", 2, 30.0, 2, 30.0, 20.0, 2, "GB", 1, 1800.0),
        ("e5", 0, None, 3, 32.0, 20.0, 3, "FR", 0, 84600.0),
        ("e6", 0, None, 0, None, None, 0, None, None, None),
    ], "id string, cust_count_1h bigint, cust_amt_sum_1h double, cust_count_1d bigint, cust_amt_sum_1d double, "
       "cust_amt_max_1d double, cust_amt_distinct_count_1d int, cust_prev_country string, "
       "cust_country_changed int, cust_seconds_since_last double")
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)


def test_all_windows_of_an_entity_share_one_shuffle(spark: SparkSession) -> None:
    events = spark.range(100).select(
        (F.col("id") % 7).alias("c"), (F.col("id") % 5).alias("m"),
        F.timestamp_seconds(F.col("id") * 600).alias("t"), F.col("id").cast("double").alias("amt"),
        F.lit("GB").alias("country"))
    groups = {"cust": GROUP, "merch": WindowGroup(entity="m", windows=("1h", "1d", "7d"), aggs={"amt": ("mean",)})}

    plan = with_window_features(events, groups=groups, timestamp="t")._jdf.queryExecution().executedPlan().toString()

    # 2 entities -> 2 exchanges, whatever the number of windows and aggregates (13 + 6 features here).
    assert plan.count("Exchange hashpartitioning") == 2
