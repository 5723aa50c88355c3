"""Incremental feature builds equal full rebuilds, including a late record reaching 3 days ahead."""

from __future__ import annotations

from pathlib import Path

from chispa import assert_df_equality
from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.features import FeatureSetConfig
from lakeboost.config.model import StorageConfig
from lakeboost.features.build import build_feature_set, reach_days
from lakeboost.io import TableCatalog
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

DATASET = DatasetConfig.model_validate({
    "events": "silver.events", "key": "txn_id", "event_time": "event_time", "date_column": "event_date",
    "label": {"kind": "presence", "column": "label", "table": "silver.cbs", "available_at": "reported_at"}})
FEATURES = FeatureSetConfig.model_validate({
    "passthrough": ["amount"],
    "groups": {"cust": {"entity": "customer_id", "windows": ["1d", "3d"], "aggs": {"amount": ["sum", "max"]},
                        "last_value": ["amount"], "time_since_last": True}},
    "label_rates": {"merch_cb": {"entity": "merchant_id", "labels": "silver.cbs", "label_key": "txn_id",
                                 "available_at": "reported_at", "window": "2d"}},
    "ratios": {"amount_vs_3d_max": "amount / nullif(cust_amount_max_3d, 0)"},
})


def events(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return (
        spark.createDataFrame(
            rows, "txn_id string, customer_id int, merchant_id string, event_time string, amount double")
        .withColumn("event_time", F.to_timestamp("event_time"))
        .withColumn("event_date", F.to_date("event_time"))
    )


def daily_events(spark: SparkSession) -> DataFrame:
    rows = [(f"T{d}{c}", c, f"M{c % 2}", f"2026-01-{d:02d} {8 + c}:00:00", float(d * 10 + c))
            for d in range(1, 11) for c in range(3)]
    return events(spark, rows)


def test_reach_is_the_longest_window_in_days() -> None:
    assert reach_days(FEATURES) == 3


def test_incremental_build_after_late_record_equals_full_rebuild(spark: SparkSession, tmp_path: Path) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    catalog.write(daily_events(spark), "silver.events")
    catalog.write(spark.createDataFrame([("T21", "2026-01-03 00:00:00")], "txn_id string, reported_at string")
                  .withColumn("reported_at", F.to_timestamp("reported_at")), "silver.cbs")
    first = build_feature_set(catalog, "feats", FEATURES, DATASET)
    assert first["mode"] == "full"

    # A late record for day 2 and a new day 11: days 2..5 and 11 change, nothing else. A
    # chargeback reported on day 11 for a day-1 transaction (older than the rows an
    # incremental build reads) must still count for its merchant.
    catalog.write(events(spark, [("LATE", 1, "M1", "2026-01-02 23:00:00", 500.0),
                                 ("NEW", 2, "M0", "2026-01-11 09:00:00", 1.0)]), "silver.events")
    catalog.write(spark.createDataFrame([("T10", "2026-01-10 23:00:00")], "txn_id string, reported_at string")
                  .withColumn("reported_at", F.to_timestamp("reported_at")), "silver.cbs")
    incremental = build_feature_set(catalog, "feats", FEATURES, DATASET)
    after_incremental = catalog.read("gold.feats", version=incremental["version"])
    assert incremental["mode"] == "incremental"
    # Only the rows the changes reach are recomputed and merged, not every row of their dates:
    # customer 1's rows of days 2..5 (the late record and its 3-day windows), merchant M1's of
    # days 2..4 (its label rate's 2-day window), merchant M0's of days 10..11 (the new label)
    # and the new day's row; the late row and the new one are inserted, the others updated.
    history = catalog.delta_table("gold.feats").history(1).first()
    assert history.operation == "MERGE"
    assert incremental["rows_written"] == incremental["rows_recomputed"] < 30
    assert int(history.operationMetrics["numTargetRowsInserted"]) == 2
    assert int(history.operationMetrics.get("numTargetRowsCopied", 0)) == 0  # deletion vectors

    rebuilt = build_feature_set(catalog, "feats", FEATURES, DATASET, full_rebuild=True)
    assert rebuilt["mode"] == "full"
    assert_df_equality(after_incremental, catalog.read("gold.feats"), ignore_row_order=True, ignore_nullable=True)
    late_effect = catalog.read("gold.feats").filter("customer_id = 1 AND event_date = '2026-01-05'").first()
    assert late_effect.cust_amount_max_3d == 500.0  # the late day-2 record reaches 3 days ahead
    new_day = catalog.read("gold.feats").filter("txn_id = 'NEW'").first()
    assert new_day.merch_cb_labels_2d == 1  # the day-1 transaction's chargeback, reported on day 10


def test_missing_change_feed_falls_back_to_a_full_rebuild(spark: SparkSession, tmp_path: Path) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    spark.conf.set("spark.databricks.delta.properties.defaults.enableChangeDataFeed", "false")
    try:
        catalog.write(daily_events(spark), "silver.events")
        catalog.write(spark.createDataFrame([], "txn_id string, reported_at timestamp"), "silver.cbs")
    finally:
        spark.conf.set("spark.databricks.delta.properties.defaults.enableChangeDataFeed", "true")
    build_feature_set(catalog, "feats", FEATURES, DATASET)
    catalog.write(events(spark, [("NEW", 2, "M0", "2026-01-11 09:00:00", 1.0)]), "silver.events")

    again = build_feature_set(catalog, "feats", FEATURES, DATASET)

    assert again["mode"] == "full" and catalog.read("gold.feats").count() == 31


def test_unchanged_inputs_build_nothing(spark: SparkSession, tmp_path: Path) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    catalog.write(daily_events(spark), "silver.events")
    catalog.write(spark.createDataFrame([], "txn_id string, reported_at timestamp"), "silver.cbs")
    build_feature_set(catalog, "feats", FEATURES, DATASET)
    version = catalog.version("gold.feats")

    again = build_feature_set(catalog, "feats", FEATURES, DATASET)

    assert again["mode"] == "unchanged" and catalog.version("gold.feats") == version


def test_an_outcome_known_long_after_its_event_rebuilds_the_days_it_became_known(
        spark: SparkSession, tmp_path: Path) -> None:
    dataset = DATASET.model_copy(update={"outcomes": {"settled": "settled_at"}})
    features = FeatureSetConfig.model_validate({
        "outcome_windows": {"cust_settled": {"entity": "customer_id", "windows": ["2d"], "aggs": {"settled": ["sum"]}}},
        "custom": []})
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    catalog.write(daily_events(spark).withColumn("settled", F.col("amount"))
                  .withColumn("settled_at", F.lit(None).cast("timestamp")), "silver.events")
    build_feature_set(catalog, "feats", features, dataset)

    # Day 1's transaction of customer 0 settles on day 9 at 10:00, 8 days after the event (the
    # windows reach only 2 days): days 9..10 change, not just days 1..3.
    catalog.delta_table("silver.events").update("txn_id = 'T10'", {"settled_at": "timestamp'2026-01-09 10:00:00'"})
    incremental = build_feature_set(catalog, "feats", features, dataset)
    assert incremental["mode"] == "incremental"
    after_incremental = catalog.read("gold.feats", version=incremental["version"])
    build_feature_set(catalog, "feats", features, dataset, full_rebuild=True)
    assert_df_equality(after_incremental, catalog.read("gold.feats"), ignore_row_order=True, ignore_nullable=True)
    sums = {r.txn_id: r.cust_settled_settled_sum_2d for r in catalog.read("gold.feats").filter("customer_id = 0")
            .collect()}
    assert sums["T90"] is None and sums["T100"] == 10.0  # day 9 08:00 is before the settlement; day 10 after


def test_a_new_day_is_appended_unless_the_table_moved_since_its_last_build(spark: SparkSession,
                                                                             tmp_path: Path) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    catalog.write(daily_events(spark), "silver.events")
    catalog.write(spark.createDataFrame([("T21", "2026-01-03 00:00:00")], "txn_id string, reported_at string")
                  .withColumn("reported_at", F.to_timestamp("reported_at")), "silver.cbs")
    build_feature_set(catalog, "feats", FEATURES, DATASET)

    # A new day, inserts only, after every row: its rows are appended (no MERGE), once.
    catalog.write(events(spark, [("N1", 1, "M1", "2026-01-11 09:00:00", 7.0),
                                 ("N2", 1, "M0", "2026-01-11 10:00:00", 9.0)]), "silver.events")
    day = build_feature_set(catalog, "feats", FEATURES, DATASET)
    assert (day["mode"], day["write"], day["rows_written"], day["dates"]) == ("incremental", "append", 2, 1)
    assert catalog.delta_table("gold.feats").history(1).first().operation == "WRITE"

    # A commit on the table since the state (a build killed before recording it would have
    # left its rows there): the next new day is merged, which is safe to repeat.
    catalog.set_properties("gold.feats", {"lakeboost.test": "moved"})
    catalog.write(events(spark, [("N3", 2, "M0", "2026-01-12 09:00:00", 3.0)]), "silver.events")
    moved = build_feature_set(catalog, "feats", FEATURES, DATASET)
    assert (moved["mode"], moved["write"], moved["rows_written"]) == ("incremental", "merge", 1)

    build_feature_set(catalog, "feats", FEATURES, DATASET, full_rebuild=True)
    assert_df_equality(catalog.read("gold.feats", version=moved["version"]), catalog.read("gold.feats"),
                       ignore_row_order=True, ignore_nullable=True)
