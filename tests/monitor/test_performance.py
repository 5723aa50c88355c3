"""Performance per scoring window on a hand-made timeline of late labels."""

from __future__ import annotations

import datetime as dt

import pytest
from lakeboost.config.dataset import DatasetConfig
from lakeboost.features.training_set import known_labels, with_labels
from lakeboost.monitor.performance import performance_by_window
from lakeboost.train.evaluate import LABEL
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

AS_OF = dt.datetime(2026, 2, 15)


def test_labels_count_once_reported_and_immature_windows_are_not_judged(spark: SparkSession) -> None:
    predictions = spark.createDataFrame([
        # 1 Jan: frauds T1 (reported 5 Jan) and T3 (reported 20 Jan), legit T2 and T4.
        ("T1", "2026-01-01 10:00:00", 0.9), ("T2", "2026-01-01 11:00:00", 0.8),
        ("T3", "2026-01-01 12:00:00", 0.3), ("T4", "2026-01-01 13:00:00", 0.1),
        # 10 Jan: T6's chargeback is reported after the monitoring time: not known yet.
        ("T5", "2026-01-10 09:00:00", 0.2), ("T6", "2026-01-10 10:00:00", 0.7),
        # 10 Feb: younger than the 30-day label maturity at AS_OF.
        ("T7", "2026-02-10 09:00:00", 0.6), ("T8", "2026-02-10 10:00:00", 0.4),
    ], "txn_id string, event_time string, score double").withColumn("event_time", F.to_timestamp("event_time"))
    chargebacks = spark.createDataFrame([
        ("T1", "2026-01-05 00:00:00"), ("T3", "2026-01-20 00:00:00"), ("T6", "2026-03-01 00:00:00"),
        ("T7", "2026-02-12 00:00:00"),
    ], "txn_id string, reported_at string").withColumn("reported_at", F.to_timestamp("reported_at"))

    dataset = DatasetConfig.model_validate({
        "events": "gold.p", "key": "txn_id", "event_time": "event_time", "date_column": "d",
        "label": {"kind": "presence", "column": "fraud", "table": "silver.cb", "available_at": "reported_at"}})
    labelled = with_labels(predictions, known_labels(chargebacks, dataset, as_of=AS_OF), dataset) \
        .withColumnRenamed("fraud", LABEL)
    windows = performance_by_window(labelled, event_time="event_time", window="day", as_of=AS_OF,
                                    maturity=dt.timedelta(days=30), min_rows=2, min_positives=1)

    by_day = {w.window_start.date().isoformat(): w for w in windows}
    assert {d: (w.status, w.rows, w.positives) for d, w in by_day.items()} == {
        "2026-01-01": ("evaluated", 4, 2), "2026-01-10": ("too_few_labels", 2, 0),
        "2026-02-10": ("pending_labels", 2, 1)}
    # Pairs (positive above negative): 0.9>0.8, 0.9>0.1, 0.3>0.1, not 0.3>0.8: ROC AUC 3/4.
    assert by_day["2026-01-01"].roc_auc == pytest.approx(0.75)
    # PR points (recall, precision): (0,1) (.5,1) (.5,.5) (1,2/3) (1,.5): area .5 + .5 * (.5 + 2/3) / 2.
    assert by_day["2026-01-01"].pr_auc == pytest.approx(0.5 + 0.5 * (0.5 + 2 / 3) / 2)
    assert by_day["2026-01-10"].pr_auc is None and by_day["2026-02-10"].roc_auc is None
