"""Point-in-time training sets: late labels, maturity, strict as-of, and the leakage audit."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from chispa import assert_df_equality
from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.durations import parse_duration
from lakeboost.config.features import FeatureSetConfig, GoldConfig, TrainingSetConfig
from lakeboost.config.model import StorageConfig
from lakeboost.errors import LeakageError, TrainingError
from lakeboost.features.training_set import (
    build_training_set,
    current_training_set,
    stored_training_set,
    write_training_set,
)
from lakeboost.io import TableCatalog
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

CONFIG = TrainingSetConfig.model_validate({
    "features": "gold.feats", "label_maturity": "10d", "warm_up": "0s",
    "as_of": [{"table": "silver.customers", "keys": "customer_id", "time": "valid_from", "strict": True,
               "columns": {"limit": "c_limit"}, "time_as": "c_asof_time"}],
    "exclude": ["customer_id"],
})
DATASET = DatasetConfig.model_validate({
    "events": "silver.events", "key": "txn_id", "event_time": "event_time", "date_column": "event_date",
    "label": {"kind": "presence", "column": "label", "table": "silver.cbs", "available_at": "reported_at"}})


def ts(df: DataFrame, *columns: str) -> DataFrame:
    for c in columns:
        df = df.withColumn(c, F.to_timestamp(c))
    return df


def setup_tables(spark: SparkSession, catalog: TableCatalog, extra_feature: str | None = None) -> None:
    rows = [(f"T{i}", i % 3, f"2026-01-{1 + i % 28:02d} 12:00:00", float(i % 7)) for i in range(60)]
    feats = ts(spark.createDataFrame(rows, "txn_id string, customer_id int, event_time string, f1 double"),
               "event_time").withColumn("_features_as_of", F.col("event_time") - F.expr("INTERVAL 1 SECOND"))
    if extra_feature:
        feats = feats.withColumn("leaky", F.expr(extra_feature))
    catalog.write(feats, "gold.feats")
    catalog.write(ts(spark.createDataFrame([
        ("T1", "2026-01-05 00:00:00"),   # reported in time: positive
        ("T2", "2026-02-20 00:00:00"),   # reported after the cutoff: unknown then, so negative
        ("T3", "2026-01-10 00:00:00"),
    ], "txn_id string, reported_at string"), "reported_at"), "silver.cbs")
    catalog.write(ts(spark.createDataFrame([
        (1, "2025-12-01 00:00:00", 100.0), (1, "2026-01-02 12:00:00", 999.0),  # same instant as T1's event
    ], "customer_id int, valid_from string, limit double"), "valid_from"), "silver.customers")


def test_labels_are_known_only_after_they_are_reported_and_young_examples_wait(
        spark: SparkSession, tmp_path: Path) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    setup_tables(spark, catalog)

    training = build_training_set(catalog, CONFIG, DATASET, cutoff=dt.datetime(2026, 2, 1))

    rows = {r.txn_id: r for r in training.df.collect()}
    assert rows["T1"].label == 1 and rows["T2"].label == 0 and rows["T3"].label == 1
    assert max(r.event_time for r in rows.values()) <= dt.datetime(2026, 1, 22)
    # Strictly before: the customer version from T1's own instant is its future.
    assert rows["T1"].c_limit == 100.0 and rows["T4"].c_limit == 999.0
    assert "f1" in training.feature_columns and "txn_id" not in training.feature_columns
    assert training.versions == {"gold.feats": 0, "silver.cbs": 0, "silver.customers": 0}
    # The audit's findings go with the set (its lineage: the train step logs them to MLflow).
    audit = training.lineage()["leakage_audit"]
    assert set(audit["aucs"]) == {"f1", "c_limit"} and audit["max_single_feature_auc"] == 0.98
    assert audit["largest"] == {"feature": max(audit["aucs"], key=audit["aucs"].get),
                                "auc": max(audit["aucs"].values())}
    # Persisted for the audit's reads and the caller's; the caller releases it.
    assert training.df.is_cached
    training.df.unpersist()


def test_a_key_column_named_categorical_is_a_feature_and_audited(spark: SparkSession, tmp_path: Path) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    setup_tables(spark, catalog)
    config = CONFIG.model_copy(update={"categorical": ("txn_id", "not_a_column")})

    training = build_training_set(catalog, config, DATASET, cutoff=dt.datetime(2026, 2, 1))

    assert "txn_id" in training.feature_columns and training.categorical == ("txn_id",)
    audit = training.leakage_audit
    assert audit is not None and audit["categorical"] == ["txn_id"] and audit["aucs"]["txn_id"] == 0.5
    training.df.unpersist()


def test_audit_names_a_feature_that_predicts_the_label_alone(spark: SparkSession, tmp_path: Path) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    setup_tables(spark, catalog, extra_feature="CASE WHEN txn_id IN ('T1', 'T3') THEN 1.0 ELSE 0.0 END")
    with pytest.raises(LeakageError, match=r"feature 'leaky' alone predicts 'label' with ROC AUC 1.0000"):
        build_training_set(catalog, CONFIG, DATASET, cutoff=dt.datetime(2026, 2, 1))


def test_audit_catches_a_feature_observed_at_its_own_time(spark: SparkSession, tmp_path: Path) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    setup_tables(spark, catalog)
    leaking = catalog.read("gold.feats").withColumn("_features_as_of", F.col("event_time"))
    catalog.write(leaking, "gold.feats", mode="overwrite")
    with pytest.raises(LeakageError, match=r"use data observed at or after their own time via '_features_as_of'"):
        build_training_set(catalog, CONFIG, DATASET, cutoff=dt.datetime(2026, 2, 1))


def test_stored_training_set_is_reused_only_while_inputs_and_config_are_unchanged(
        spark: SparkSession, tmp_path: Path) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    setup_tables(spark, catalog)
    config = CONFIG.model_copy(update={"cutoff": "2026-02-01T00:00:00"})
    assert stored_training_set(catalog, config, DATASET) is None  # nothing written yet
    built = build_training_set(catalog, config, DATASET)
    write_training_set(catalog, built)

    stored = stored_training_set(catalog, config, DATASET)

    assert stored is not None and stored.lineage() == built.lineage()
    assert_df_equality(stored.df, built.df, ignore_row_order=True, ignore_nullable=True)
    # Another configuration, or a new label, makes it stale.
    shorter = config.model_copy(update={"label_maturity": parse_duration("5d")})
    assert stored_training_set(catalog, shorter, DATASET) is None
    catalog.write(ts(spark.createDataFrame([("T4", "2026-01-12 00:00:00")], "txn_id string, reported_at string"),
                     "reported_at"), "silver.cbs")
    assert stored_training_set(catalog, config, DATASET) is None
    rebuilt = current_training_set(catalog, config, DATASET)
    assert rebuilt.versions["silver.cbs"] == 1 and rebuilt.df.filter("txn_id = 'T4' AND label = 1").count() == 1
    # The label rolled back (RESTORE to version 0, a commit of its own): the data the stored set
    # was built from again, so it is current; a new write after the restore makes it stale.
    catalog.delta_table("silver.cbs").restoreToVersion(0)
    assert catalog.version("silver.cbs") == 2 and catalog.content_version("silver.cbs") == 0
    assert stored_training_set(catalog, config, DATASET) is not None
    catalog.write(ts(spark.createDataFrame([("T4", "2026-01-12 00:00:00")], "txn_id string, reported_at string"),
                     "reported_at"), "silver.cbs")
    assert catalog.content_version("silver.cbs") == 3 and stored_training_set(catalog, config, DATASET) is None


def test_warm_up_leaves_out_examples_whose_windows_are_still_filling(spark: SparkSession, tmp_path: Path) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    setup_tables(spark, catalog)
    cutoff = dt.datetime(2026, 2, 1)
    everything = build_training_set(catalog, CONFIG, DATASET, cutoff=cutoff).df
    five_days = CONFIG.model_copy(update={"warm_up": parse_duration("5d")})
    warmed = build_training_set(catalog, five_days, DATASET, cutoff=cutoff).df

    # The first event is 2026-01-01 12:00: examples before 2026-01-06 12:00 are left out, no other.
    boundary = dt.datetime(2026, 1, 6, 12)
    assert_df_equality(warmed, everything.filter(F.col("event_time") >= F.lit(boundary)),
                       ignore_row_order=True, ignore_nullable=True)
    assert everything.filter(F.col("event_time") < F.lit(boundary)).count() > 0

    # A warm-up that reaches past the last mature example is refused, with the dates that clash.
    with pytest.raises(TrainingError, match=r"no example is both warmed up and mature.*2026-01-01 12:00:00.*"
                                            r"warm_up 40d"):
        build_training_set(catalog, CONFIG.model_copy(update={"warm_up": parse_duration("40d")}), DATASET,
                           cutoff=cutoff)


def test_warm_up_auto_is_what_the_longest_window_needs() -> None:
    features = FeatureSetConfig.model_validate({
        "groups": {"customer": {"entity": "c", "windows": ["1h", "7d"]}},
        "label_rates": {"merchant_rate": {"entity": "m", "window": "14d"}},
        "custom": [{"name": "f", "lookback": "20d"}]})
    gold = GoldConfig.model_validate({"features": {"feats": features.model_dump()},
                                      "training_set": {"features": "gold.feats", "label_maturity": "10d"}})
    assert gold.training_set is not None
    # The label rate counts labels reported in its 14 days, of events up to 10 days older.
    assert gold.training_set.resolved_warm_up() == dt.timedelta(days=24)
    assert features.warm_up_reasons(dt.timedelta(0))["custom f lookback 20d"] == dt.timedelta(days=20)
    unresolved = TrainingSetConfig.model_validate({"features": "gold.feats"})
    with pytest.raises(ValueError, match="warm_up is `auto`"):
        unresolved.resolved_warm_up()


def test_value_label_with_a_composite_key_leaves_out_examples_not_known_at_the_cutoff(
        spark: SparkSession, tmp_path: Path) -> None:
    """A delivery is late when it took over 3 days; that is known only once it was delivered."""
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    events = ts(spark.createDataFrame([
        ("S1", 1, "2026-01-01 00:00:00", "2026-01-02 00:00:00"),   # 1 day: on time, known
        ("S1", 2, "2026-01-02 00:00:00", "2026-01-08 00:00:00"),   # 6 days: late, known
        ("S2", 1, "2026-01-05 00:00:00", "2026-01-12 00:00:00"),   # delivered after the cutoff: unknown
        ("S2", 2, "2026-01-06 00:00:00", None),                    # not delivered yet: unknown
        ("S3", 1, "2026-01-07 00:00:00", "2026-01-09 00:00:00"),   # 2 days, known
    ], "shop string, order_no int, placed_at string, delivered_at string"), "placed_at", "delivered_at")
    catalog.write(events, "silver.orders")
    feats = events.select("shop", "order_no", "placed_at", F.to_date("placed_at").alias("day"),
                          F.lit(1.0).alias("f1"),  # uninformative: the audit passes
                          (F.col("placed_at") - F.expr("INTERVAL 1 SECOND")).alias("_features_as_of"))
    catalog.write(feats, "gold.order_feats")
    dataset = DatasetConfig.model_validate({
        "events": "silver.orders", "key": ["shop", "order_no"], "event_time": "placed_at", "date_column": "day",
        "label": {"kind": "value", "column": "late", "expr": "delivered_at > placed_at + INTERVAL 3 DAYS",
                  "available_at": "delivered_at"}})
    cfg = TrainingSetConfig.model_validate({"features": "gold.order_feats", "exclude": ["shop"], "warm_up": "0s"})

    training = build_training_set(catalog, cfg, dataset, cutoff=dt.datetime(2026, 1, 10))

    expected = spark.createDataFrame([("S1", 1, 0), ("S1", 2, 1), ("S3", 1, 0)], "shop string, order_no int, late int")
    assert_df_equality(training.df.select("shop", "order_no", "late"), expected, ignore_row_order=True,
                       ignore_nullable=True)
    assert training.feature_columns == ("f1",)
    assert training.versions == {"gold.order_feats": 0, "silver.orders": 0}


def test_audit_checks_what_outcome_windows_and_label_rates_counted(spark: SparkSession, tmp_path: Path) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    setup_tables(spark, catalog)
    counted_in_time = catalog.read("gold.feats").withColumn("_known_as_of_shop", F.col("_features_as_of"))
    catalog.write(counted_in_time, "gold.feats", mode="overwrite", extra_options={"overwriteSchema": "true"})
    build_training_set(catalog, CONFIG, DATASET, cutoff=dt.datetime(2026, 2, 1))
    # An outcome counted from after the event (a window over the event's time, say) is caught.
    leaking = counted_in_time.withColumn("_known_as_of_shop", F.col("event_time") + F.expr("INTERVAL 1 HOUR"))
    catalog.write(leaking, "gold.feats", mode="overwrite")
    with pytest.raises(LeakageError, match=r"via '_known_as_of_shop'"):
        build_training_set(catalog, CONFIG, DATASET, cutoff=dt.datetime(2026, 2, 1))
