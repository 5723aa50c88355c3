"""Features computed for a few target events from their entities' history arrays (`point.py`,
what incremental builds run) equal the window computation over all events bit for bit, with
amounts that are not whole numbers (so sums, means and deviations depend on their order)."""

from __future__ import annotations

import datetime as dt
import random

from chispa import assert_df_equality
from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.features import FeatureSetConfig
from lakeboost.features.compute import compute_features, compute_features_at
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from tests.features import small_lake

DATASET = DatasetConfig.model_validate(small_lake.APPLICATION["dataset"])
FEATURES = FeatureSetConfig.model_validate({
    "passthrough": ["amount", "settled"],
    "groups": {
        "cust": {"entity": "customer_id", "windows": ["1h", "1d", "3d"],
                 "aggs": {"amount": ["sum", "mean", "max", "min", "stddev", "count"],
                          "merchant_id": ["distinct_count"], "settled": ["sum", "mean"]},
                 "last_value": ["merchant_id"], "time_since_last": True},
        "merch": {"entity": "merchant_id", "windows": ["1d"], "aggs": {"amount": ["mean", "stddev"]}},
    },
    "outcome_windows": {"cust_settled": {"entity": "customer_id", "windows": ["2d"], "aggs": {"settled": ["sum"]}}},
    "label_rates": {"merch_cb": {"entity": "merchant_id", "window": "2d"}},
})


def test_point_features_of_some_events_equal_the_window_features(spark: SparkSession) -> None:
    rng = random.Random(7)
    rows = []
    for i in range(400):  # 6 days; distinct seconds (which of two tied rows is "previous" is undefined)
        at = small_lake.START + dt.timedelta(seconds=rng.randrange(6 * 86400) * 7 + i % 7)
        settled = None if rng.random() < 0.2 else rng.uniform(-5, 5) / 3
        rows.append((f"K{i}", rng.randrange(6), None if rng.random() < 0.1 else f"M{rng.randrange(3)}", at,
                     None if rng.random() < 0.1 else rng.uniform(0, 1000) / 7, settled,
                     None if settled is None else at + dt.timedelta(hours=rng.randrange(60))))
    events = small_lake.events(spark, rows)
    labels = small_lake.labels(spark, [(f"K{i}", small_lake.START + dt.timedelta(days=rng.uniform(0, 9)))
                                       for i in rng.sample(range(400), 60)])
    expected = compute_features(events, features=FEATURES, dataset=DATASET, labels={"merch_cb": labels})
    targets = events.filter((F.col("event_time") >= F.lit(small_lake.START + dt.timedelta(days=5)))
                            | F.col("txn_id").isin("K1", "K2", "K3"))
    keys = targets.select("txn_id")
    actual = compute_features_at(targets, events, features=FEATURES, dataset=DATASET,
                                 labels={"merch_cb": labels}, lookup=events)
    assert actual.count() > 60
    assert_df_equality(actual, expected.join(keys, on="txn_id", how="left_semi"), ignore_row_order=True,
                       ignore_nullable=True)
