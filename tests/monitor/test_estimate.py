"""Performance estimated without labels: CBPE against labels really drawn Bernoulli(score), DLE
against a known heteroscedastic error."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from lakeboost.io import TableCatalog
from lakeboost.metrics.base import LABEL, EvaluationError
from lakeboost.model import CHAMPION, load_model
from lakeboost.model.tracking import use_tracking
from lakeboost.monitor.estimate import (
    Estimate,
    cbpe_by_window,
    dle_by_window,
    estimate_breached,
    estimates_frame,
    fit_loss_model,
)
from lakeboost.monitor.performance import performance_by_window
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from sklearn import metrics as skm

DAY0 = dt.datetime(2026, 3, 2)  # a Monday
THRESHOLD = 0.3


def _scored(spark: SparkSession, rows: int) -> DataFrame:
    """Two days of calibrated-looking scores: day 1 mostly low (a rare positive class), day 2
    shifted up; slice `channel` a/b with different score laws."""
    u = F.rand(7)
    day = (F.col("id") % 2).cast("int")
    channel = F.when(F.rand(11) < 0.3, "a").otherwise("b")
    score = F.when(day == 0, F.pow(u, 4.0)).otherwise(F.pow(u, 1.5))
    return (spark.range(rows)
            .select(F.timestamp_seconds(F.lit(DAY0.timestamp()) + day * 86400 + F.col("id") % 3600)
                    .alias("event_time"), channel.alias("channel"),
                    F.when(channel == "a", F.sqrt(score)).otherwise(score).alias("score")))


def _oracle(scores: np.ndarray, draws: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Each metric over `draws` label draws Bernoulli(score), computed row by row (sklearn's exact
    ROC AUC, the PR curve's trapezoid, the confusion counts at THRESHOLD)."""
    out: dict[str, list[float]] = {m: [] for m in ("roc_auc", "pr_auc", "precision", "recall", "base_rate")}
    above = scores >= THRESHOLD
    for _ in range(draws):
        y = rng.random(len(scores)) < scores
        out["roc_auc"].append(skm.roc_auc_score(y, scores))
        precision, recall, _ = skm.precision_recall_curve(y, scores)
        out["pr_auc"].append(skm.auc(recall, precision))
        out["precision"].append(y[above].mean())
        out["recall"].append(y[above].sum() / y.sum())
        out["base_rate"].append(y.mean())
    return {m: np.array(v) for m, v in out.items()}


def _by(estimates: list[Estimate]) -> dict[tuple[dt.datetime, str | None, str], Estimate]:
    return {(e.window_start, e.slice, e.metric): e for e in estimates}


def test_cbpe_expects_what_labels_drawn_from_the_scores_realize_on_average(spark: SparkSession) -> None:
    scored = _scored(spark, 6000)
    spark.sparkContext.setJobGroup("cbpe-test", "cbpe")
    try:
        estimates = cbpe_by_window(scored, event_time="event_time", window="day", threshold=THRESHOLD, draws=400)
        jobs = spark.sparkContext.statusTracker().getJobIdsForGroup("cbpe-test")
    finally:
        spark.sparkContext.setJobGroup("", "")
    assert len(jobs) <= 2  # one groupBy (and at most its adaptive stage's own job)
    got = _by(estimates)
    frame = scored.toPandas()  # the oracle reads the rows; the estimate never does
    rng = np.random.default_rng(1)
    for day in (0, 1):
        start = DAY0 + dt.timedelta(days=day)
        scores = frame.loc[frame.event_time.dt.day == start.day, "score"].to_numpy()
        realized = _oracle(scores, 200, rng)
        for metric, values in realized.items():
            e = got[(start, None, metric)]
            assert e.rows == len(scores)
            # The expectation: the realized average over many draws (the ratio-of-expectations
            # estimate is biased by O(1/n), and binning moves an area by less than 0.002).
            assert e.estimate == pytest.approx(values.mean(), abs=0.006), metric
            # The interval: where the realized metric lands, about 95% of draws.
            assert e.low is not None and e.high is not None
            inside = np.mean((values >= e.low - 1e-9) & (values <= e.high + 1e-9))
            assert 0.88 <= inside <= 0.995, (metric, inside)
            # Its width is the realized spread's, not a loose bound.
            assert e.high - e.low == pytest.approx(np.quantile(values, 0.975) - np.quantile(values, 0.025),
                                                   rel=0.25), metric


def test_cbpe_estimates_each_slice_on_its_own_rows(spark: SparkSession) -> None:
    scored = _scored(spark, 4000).where(F.col("event_time") < F.lit(DAY0 + dt.timedelta(days=1)))
    estimates = cbpe_by_window(scored, event_time="event_time", window="week", threshold=THRESHOLD,
                               slice_by="channel", draws=100)
    rows = {e.slice: e.rows for e in estimates if e.metric == "base_rate"}
    assert rows.keys() == {"a", "b"} and sum(rows.values()) == 2000
    frame = scored.toPandas()
    for name in ("a", "b"):
        base = _by(estimates)[(DAY0, name, "base_rate")]
        assert base.estimate == pytest.approx(frame.loc[frame.channel == name, "score"].mean(), rel=1e-9)
    # Channel a's scores are the square roots of b's law: its expected base rate is higher.
    assert _by(estimates)[(DAY0, "a", "base_rate")].estimate > _by(estimates)[(DAY0, "b", "base_rate")].estimate
    table = estimates_frame(spark, estimates)
    assert table.count() == len(estimates) and set(table.columns) >= {"window_start", "slice", "metric", "low"}


def test_cbpe_leaves_out_metrics_a_window_cannot_have_and_checks_its_arguments(spark: SparkSession) -> None:
    scored = spark.createDataFrame([(DAY0, 0.1), (DAY0, 0.2), (DAY0, None)], "event_time timestamp, score double")
    got = _by(cbpe_by_window(scored, event_time="event_time", window="day", threshold=0.9, draws=50))
    assert got[(DAY0, None, "precision")].estimate is None  # nothing at or above the threshold
    assert got[(DAY0, None, "base_rate")].rows == 2
    with pytest.raises(EvaluationError, match="level"):
        cbpe_by_window(scored, event_time="event_time", window="day", threshold=0.5, level=95)
    with pytest.raises(EvaluationError, match="probability"):
        cbpe_by_window(scored, event_time="event_time", window="day", threshold=0.5, score="probability")


def test_estimate_breaches_on_the_value_or_on_its_whole_interval() -> None:
    e = Estimate(DAY0, None, "roc_auc", 0.70, 0.66, 0.76, 500)
    assert estimate_breached(e, 0.72, higher_is_better=True)
    assert not estimate_breached(e, 0.72, higher_is_better=True, confident=True)
    assert estimate_breached(e, 0.77, higher_is_better=True, confident=True)
    assert not estimate_breached(e, None, higher_is_better=True)
    rmse = Estimate(DAY0, None, "rmse", 2.0, 1.8, 2.2, 500)
    assert estimate_breached(rmse, 1.9, higher_is_better=False)
    assert not estimate_breached(rmse, 1.9, higher_is_better=False, confident=True)


def _regression(spark: SparkSession, rows: int, seed: int, x2_low: float) -> DataFrame:
    """y = 3·x1 + noise of sd 0.2 + 2·x2; the model predicts 3·x1, so its |error| grows with x2."""
    x1, x2 = F.rand(seed), F.lit(x2_low) + (1.0 - x2_low) * F.rand(seed + 1)
    noise = F.randn(seed + 2)
    return (spark.range(rows)
            .select(x1.alias("x1"), x2.alias("x2"), noise.alias("e"), F.col("id"))
            .select("x1", "x2", (3 * F.col("x1")).alias("score"),
                    (3 * F.col("x1") + F.col("e") * (0.2 + 2 * F.col("x2"))).alias("y"),
                    F.timestamp_seconds(F.lit(DAY0.timestamp()) + (F.col("id") % 7) * 3600).alias("event_time")))


def test_dle_estimates_mae_and_rmse_of_a_window_whose_inputs_shifted(spark: SparkSession) -> None:
    validation = _regression(spark, 8000, 1, 0.0).cache()
    model = fit_loss_model(validation, features=["x1", "x2"], label="y", max_iter=5, step_size=0.6)
    assert model.rows == 8000 and model.validation_mae > 0
    week2 = DAY0 + dt.timedelta(days=7)
    live = (_regression(spark, 2000, 5, 0.0)  # as on validation
            .unionByName(_regression(spark, 2000, 9, 0.6)  # x2 moved up: larger errors, one week later
                         .withColumn("event_time", F.col("event_time") + F.expr("INTERVAL 7 DAYS"))))
    got = _by(dle_by_window(live.drop("y"), model, event_time="event_time", window="week"))
    realized = {r["w"]: r for r in live.groupBy(F.date_trunc("week", "event_time").alias("w"))
                .agg(F.avg(F.abs(F.col("score") - F.col("y"))).alias("mae"),
                     F.sqrt(F.avg(F.pow(F.col("score") - F.col("y"), 2))).alias("rmse")).collect()}
    # The true expectations: |error| ~ half-normal of sd s = 0.2 + 2·x2, x2 uniform on [low, 1].
    def expected(low: float) -> dict[str, float]:
        mean_s, var_s = 0.2 + (1.0 + low), (2.0 * (1.0 - low)) ** 2 / 12.0
        return {"mae": (2.0 / np.pi) ** 0.5 * mean_s, "rmse": (var_s + mean_s**2) ** 0.5}

    for start, low in ((DAY0, 0.0), (week2, 0.6)):
        for metric in ("mae", "rmse"):
            e = got[(start, None, metric)]
            assert e.rows == 2000
            assert e.estimate == pytest.approx(expected(low)[metric], rel=0.04), (start, metric)
            assert e.low is not None and e.high is not None
            if low == 0.0:  # where validation's rows lie, the realized value is inside the interval
                assert e.low <= realized[start][metric] <= e.high, (start, metric, e, realized[start][metric])
    # The shifted week's errors are ~1.5x larger: the estimate sees it without labels, and its
    # interval widens with the errors' spread.
    shifted, before = got[(week2, None, "mae")], got[(DAY0, None, "mae")]
    assert shifted.estimate > 1.3 * before.estimate
    assert shifted.high - shifted.low > 1.3 * (before.high - before.low)
    validation.unpersist()


def test_dle_refuses_non_numeric_inputs(spark: SparkSession) -> None:
    frame = spark.createDataFrame([("a", 1.0, 1.0)], "c string, score double, y double")
    with pytest.raises(EvaluationError, match="numeric"):
        fit_loss_model(frame, features=["c"], label="y")


def test_cbpe_on_the_demo_stream_brackets_the_true_labels_known_a_month_later(spark: SparkSession, demo) -> None:
    """The champion's calibrated live scores (the real stream's predictions) against the true
    label of every live event (the generator's truth): the realized ROC AUC and base rate of each
    week lie in the estimate's interval (bench/bench_estimate.py measures the errors at 200k rows)."""
    config, _ = demo
    use_tracking(config)  # another test of this process may have pointed MLflow elsewhere
    champion = load_model(config.training.tracking.registered_model, CHAMPION)
    dataset, threshold = champion.dataset, champion.meta.threshold
    assert threshold is not None and config.scoring.stream is not None
    scored = (TableCatalog(spark, config.storage).read(config.scoring.stream.predictions_table)
              .where((F.col("model_version") == champion.version) & (F.col("model_name") == champion.name))
              .select(*dataset.key, dataset.event_time, "score"))
    got = _by(cbpe_by_window(scored, event_time=dataset.event_time, window="week", threshold=threshold))
    truth = (spark.read.parquet(f"{config.storage.landing}/truth/labels.parquet")
             .select(*dataset.key, F.col("is_fraud").cast("int").alias(LABEL)))
    realized = performance_by_window(scored.join(truth, list(dataset.key), "inner"), event_time=dataset.event_time,
                                     window="week", as_of=dt.datetime(2100, 1, 1), maturity=dt.timedelta(0),
                                     min_rows=1, min_positives=5)
    judged = [w for w in realized if w.status == "evaluated"]
    assert judged and sum(w.rows for w in realized) == sum(e.rows for (_, _, m), e in got.items() if m == "roc_auc")
    for w in judged:
        auc, base = got[(w.window_start, None, "roc_auc")], got[(w.window_start, None, "base_rate")]
        assert auc.rows == w.rows
        assert auc.low is not None and auc.high is not None and auc.low <= w.roc_auc <= auc.high, (auc, w)
        assert base.low is not None and base.high is not None and base.low <= w.base_rate <= base.high, (base, w)
