"""Performance per scoring window on a hand-made timeline of late labels."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from lakeboost.config.dataset import DatasetConfig
from lakeboost.features.training_set import known_labels, with_labels
from lakeboost.metrics.base import LABEL
from lakeboost.monitor.performance import (
    decay_bound,
    decay_metric,
    decayed,
    multiclass_by_window,
    performance_by_window,
    regression_by_window,
)
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from sklearn import metrics as skm

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


def test_regression_windows_judge_only_values_known_by_then_and_match_sklearn(spark: SparkSession) -> None:
    rng = np.random.default_rng(9)
    days = ["2026-01-01", "2026-01-02", "2026-02-14"]
    rows = [(f"E{i}", f"{days[i % 3]} {i % 24:02d}:00:00", float(rng.normal(10, 3)), float(rng.normal(10, 3)),
             None if i % 7 == 0 else f"{days[i % 3]} 23:30:00") for i in range(90)]
    events = (spark.createDataFrame(rows, "k string, t string, score double, y double, known string")
              .withColumn("t", F.to_timestamp("t")).withColumn("known", F.to_timestamp("known")))
    dataset = DatasetConfig.model_validate({
        "events": "gold.e", "key": "k", "event_time": "t", "date_column": "d",
        "label": {"kind": "value", "column": "y_label", "expr": "y", "available_at": "known"}})
    labelled = with_labels(events.select("k", "t", "score"), known_labels(events, dataset, as_of=AS_OF), dataset) \
        .withColumnRenamed("y_label", LABEL)
    windows = {w.window_start.strftime("%Y-%m-%d"): w for w in regression_by_window(
        labelled, event_time="t", window="day", as_of=AS_OF, maturity=dt.timedelta(days=1), min_rows=5)}

    assert windows["2026-02-14"].status == "pending_labels" and windows["2026-02-14"].metrics is None
    for day in days[:2]:
        kept = [r for r in rows if r[1].startswith(day) and r[4] is not None]  # unknown values are not judged
        y, yhat = [r[3] for r in kept], [r[2] for r in kept]
        got = windows[day]
        assert got.status == "evaluated" and got.rows == len(kept)
        assert got.metrics["rmse"] == pytest.approx(skm.mean_squared_error(y, yhat) ** 0.5)
        assert got.metrics["mae"] == pytest.approx(skm.mean_absolute_error(y, yhat))
        assert got.metrics["r2"] == pytest.approx(skm.r2_score(y, yhat))


def test_multiclass_windows_match_sklearn(spark: SparkSession) -> None:
    rng = np.random.default_rng(4)
    probabilities = rng.dirichlet([1, 1, 1], 60)
    labels = rng.integers(0, 3, 60)
    rows = [(f"E{i}", f"2026-01-0{1 + i % 2} 10:00:00", int(labels[i]), int(probabilities[i].argmax()),
             [float(p) for p in probabilities[i]]) for i in range(60)]
    labelled = (spark.createDataFrame(rows, f"k string, t string, {LABEL} int, predicted_label int, "
                                            "probabilities array<double>")
                .withColumn("t", F.to_timestamp("t")))
    windows = multiclass_by_window(labelled, event_time="t", window="day", as_of=AS_OF,
                                   maturity=dt.timedelta(days=1), min_rows=5)
    assert len(windows) == 2
    for w, day in zip(windows, (0, 1), strict=True):
        idx = [i for i in range(60) if i % 2 == day]
        assert w.metrics["accuracy"] == pytest.approx(skm.accuracy_score(labels[idx], probabilities[idx].argmax(1)))
        assert w.metrics["macro_f1"] == pytest.approx(
            skm.f1_score(labels[idx], probabilities[idx].argmax(1), average="macro"))
        assert w.metrics["log_loss"] == pytest.approx(skm.log_loss(labels[idx], probabilities[idx], labels=[0, 1, 2]))


@pytest.mark.parametrize(("metric", "baseline", "bound", "bad", "fine"), [
    ("pr_auc", 0.40, 0.30, 0.29, 0.31),   # higher is better: a relative fall of 25%
    ("rmse", 2.0, 2.5, 2.51, 2.49),       # lower is better: a relative rise of 25%
    ("log_loss", 0.8, 1.0, 1.01, 0.99),
])
def test_decay_is_judged_in_the_metrics_direction(metric: str, baseline: float, bound: float, bad: float,
                                                  fine: float) -> None:
    assert decay_bound(metric, baseline, 0.25) == pytest.approx(bound)
    assert decayed(metric, bad, bound) and not decayed(metric, fine, bound) and not decayed(metric, None, bound)


def test_a_week_with_fewer_positives_from_an_unchanged_model_is_not_decay(spark: SparkSession) -> None:
    """Three weeks scored by one model: the first like the test split (10% positives), the second
    with 1% positives and the same score distributions per class, the third with its ranking
    broken. PR AUC falls in both later weeks (the rule before judged the second as decay); the
    judged metric, ROC AUC, falls only in the third. Base rates recorded for each."""
    rng = np.random.default_rng(5)
    rows = []
    for week, (n, rate, signal) in enumerate([(20_000, 0.10, 1.5), (20_000, 0.01, 1.5), (20_000, 0.10, 0.2)]):
        labels = rng.random(n) < rate
        scores = 1 / (1 + np.exp(-(rng.normal(size=n) + signal * labels - 2)))
        start = dt.datetime(2026, 1, 5) + dt.timedelta(weeks=week)
        rows += [(start + dt.timedelta(minutes=i % 9000), float(s), int(y))
                 for i, (s, y) in enumerate(zip(scores, labels, strict=True))]
    labelled = spark.createDataFrame(rows, f"event_time timestamp, score double, {LABEL} int")
    first, fewer, broken = performance_by_window(labelled, event_time="event_time", window="week", as_of=AS_OF,
                                                 maturity=dt.timedelta(days=1), min_rows=100, min_positives=20)
    assert [round(w.base_rate, 2) for w in (first, fewer, broken)] == [0.10, 0.01, 0.10]
    judged_by = decay_metric("pr_auc", "binary")
    assert judged_by == "roc_auc"
    by_pr_auc = decay_bound("pr_auc", first.pr_auc, 0.2)
    by_roc_auc = decay_bound(judged_by, first.roc_auc, 0.2)
    assert decayed("pr_auc", fewer.pr_auc, by_pr_auc)  # what was judged before: a false alarm
    assert not decayed(judged_by, fewer.roc_auc, by_roc_auc)
    assert abs(fewer.roc_auc - first.roc_auc) < 0.03
    assert decayed(judged_by, broken.roc_auc, by_roc_auc)  # a real decay still is one
    assert decay_metric("rmse", "regression") == "rmse"


def test_the_roc_auc_interval_covers_the_true_auc_about_95_percent_of_the_time() -> None:
    """Hanley & McNeil's interval on binormal scores (true AUC Phi(1/sqrt 2) = 0.760), at a demo
    week's size (16 positives, 700 rows): over 400 draws it covers the truth 90-99% of the time."""
    import numpy as np
    from lakeboost.monitor.performance import auc_interval
    from scipy import stats

    rng = np.random.default_rng(5)
    truth = float(stats.norm.cdf(1 / np.sqrt(2)))
    covered = 0
    for _ in range(400):
        positives, negatives = rng.normal(1.0, 1.0, 16), rng.normal(0.0, 1.0, 684)
        ranks = stats.rankdata(np.concatenate([positives, negatives]))[:16]
        auc = (ranks.sum() - 16 * 17 / 2) / (16 * 684)
        low, high = auc_interval(auc, 16, 684)
        covered += low <= truth <= high
    assert 0.90 <= covered / 400 <= 0.99
    assert auc_interval(0.85, 16, 684) == pytest.approx((0.731, 0.969), abs=1e-3)


def test_every_slice_columns_windows_come_from_one_aggregation_equal_to_separate_ones(spark: SparkSession) -> None:
    from lakeboost.monitor.profile import Slicer

    from tests.helpers import spark_jobs

    rng = np.random.default_rng(11)
    rows = [(dt.datetime(2026, 1, 1) + dt.timedelta(hours=int(h)), float(s), int(rng.random() < s),
             str(rng.choice(["DE", "FR", "NL"])), str(rng.choice(["web", "app"])))
            for h, s in zip(rng.integers(0, 24 * 21, 3000), rng.beta(1, 4, 3000), strict=True)]
    labelled = spark.createDataFrame(rows, f"event_time timestamp, score double, {LABEL} int, country string, "
                                           "channel string")
    slicers = [Slicer("country", ("DE", "FR")), Slicer("channel", ("web",))]
    kw = {"event_time": "event_time", "window": "week", "as_of": AS_OF, "maturity": dt.timedelta(days=7),
          "min_rows": 50, "min_positives": 5}

    together, jobs = spark_jobs(spark, lambda: performance_by_window(labelled, slices=[s.expr() for s in slicers],
                                                                     **kw))
    separate = performance_by_window(labelled, **kw)
    for s in slicers:
        separate += performance_by_window(labelled, slice_by=s.expr(), **kw)
    assert jobs <= 2  # one aggregation (and its adaptive stage's job), whatever the slice columns
    key = lambda p: (p.slice, p.window_start)  # noqa: E731
    assert sorted(together, key=key) == sorted(separate, key=key)
    assert {p.slice for p in together} == {"all", "country=DE", "country=FR", "country=other", "channel=web",
                                           "channel=other"}
