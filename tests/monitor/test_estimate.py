"""Performance estimated without labels: CBPE against labels really drawn Bernoulli(score), DLE
against a known heteroscedastic error."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pytest
from lakeboost.errors import TrainingError
from lakeboost.io import TableCatalog
from lakeboost.metrics.base import LABEL, EvaluationError
from lakeboost.model import CHAMPION, load_model
from lakeboost.model.loss import LossModel
from lakeboost.model.tracking import use_tracking
from lakeboost.monitor.estimate import (
    Estimate,
    cbpe_by_window,
    cbpe_by_windows,
    dle_by_window,
    estimate_breached,
    estimates_frame,
)
from lakeboost.monitor.performance import performance_by_window
from lakeboost.train.loss import fit_loss_model
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


def test_cbpe_for_several_slice_columns_in_one_job_draws_each_as_its_own_call(spark: SparkSession) -> None:
    """The monitor's one aggregation for the whole window and every slice column gives each part
    exactly the estimates and intervals of a call for that part alone, in any order of the parts."""
    scored = _scored(spark, 3000).withColumn("high", (F.col("score") > 0.5).cast("string"))
    spark.sparkContext.setJobGroup("cbpe-parts", "cbpe")
    try:
        parts = cbpe_by_windows(scored, event_time="event_time", window="day", threshold=THRESHOLD,
                                slices=[None, "channel", "high"], draws=60)
        jobs = spark.sparkContext.statusTracker().getJobIdsForGroup("cbpe-parts")
    finally:
        spark.sparkContext.setJobGroup("", "")
    assert len(jobs) <= 2  # one groupBy for the three parts
    reordered = cbpe_by_windows(scored, event_time="event_time", window="day", threshold=THRESHOLD,
                                slices=["high", None, "channel"], draws=60)
    for by, got, again in zip([None, "channel", "high"], parts, [reordered[1], reordered[2], reordered[0]],
                              strict=True):
        alone = cbpe_by_windows(scored.select("event_time", "score", *([by] if by else [])), event_time="event_time",
                                window="day", threshold=THRESHOLD, slices=[by], draws=60)[0]
        assert got == alone == again, by
        assert {e.slice for e in got} == ({None} if by is None else {"a", "b"} if by == "channel"
                                          else {"true", "false"})


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


def _regression(spark: SparkSession, rows: int, seed: int, x2_low: float, *, start: dt.datetime = DAY0,
                tails: bool = False) -> DataFrame:
    """y = 3·x1 + noise of scale s = 0.2 + 2·x2; the model predicts 3·x1, so its |error| grows
    with x2. `x2_low` > 0 moves the rows into the high-error region (a covariate shift).
    `tails`: the noise is Student's t with 3 degrees of freedom (scaled to variance 1: heavy
    tails, where a window's RMSE rests on a few rows). One row a minute from `start`."""
    x1, x2 = F.rand(seed), F.lit(x2_low) + (1.0 - x2_low) * F.rand(seed + 1)
    noise = F.randn(seed + 2)
    if tails:  # t3 / sqrt(3): a normal over the root of a chi² with 3 degrees of freedom, over 3
        chi2 = F.pow(F.randn(seed + 3), 2) + F.pow(F.randn(seed + 4), 2) + F.pow(F.randn(seed + 5), 2)
        noise = noise / F.sqrt(chi2 / 3.0) / F.sqrt(F.lit(3.0))
    return (spark.range(rows)
            .select(x1.alias("x1"), x2.alias("x2"), noise.alias("e"), F.col("id"))
            .select("x1", "x2", (3 * F.col("x1")).alias("score"),
                    (3 * F.col("x1") + F.col("e") * (0.2 + 2 * F.col("x2"))).alias("y"),
                    F.timestamp_seconds(F.lit(start.timestamp()) + F.col("id") * 60).alias("event_time")))


def _realized(frame: DataFrame, window: str = "week") -> dict[dt.datetime, Any]:
    err = F.col("score") - F.col("y")
    return {r["w"]: r for r in frame.groupBy(F.date_trunc(window, "event_time").alias("w"))
            .agg(F.avg(F.abs(err)).alias("mae"), F.sqrt(F.avg(err * err)).alias("rmse"),
                 F.avg(F.lit((2.0 / np.pi) ** 0.5) * (0.2 + 2 * F.col("x2"))).alias("oracle_mae"),
                 F.sqrt(F.avg(F.pow(0.2 + 2 * F.col("x2"), 2))).alias("oracle_rmse")).collect()}


def test_dle_tracks_the_mae_of_a_window_whose_inputs_moved_where_errors_are_larger(spark: SparkSession) -> None:
    validation = _regression(spark, 6000, 1, 0.0, start=DAY0 - dt.timedelta(days=7))
    model = fit_loss_model(validation, features=["x1", "x2"], label="y", prediction="score", order="event_time")
    assert model.validation["rows"] == 6000 and model.inputs == ("x1", "x2")
    # Stored as JSON with the model and read back: the same estimates.
    model = LossModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert model is not None
    week2 = DAY0 + dt.timedelta(days=7)
    live = (_regression(spark, 3000, 5, 0.0)  # as on validation
            .unionByName(_regression(spark, 3000, 9, 0.6, start=week2)))  # x2 moved up: larger errors
    got = _by(dle_by_window(live.drop("y"), model, event_time="event_time", window="week"))
    realized = _realized(live)
    for start in (DAY0, week2):
        for metric in ("mae", "rmse"):
            e, truth = got[(start, None, metric)], realized[start]
            assert e.rows == 3000 and e.estimate is not None and e.low is not None and e.high is not None
            # The brute-force oracle: each row's expected loss from its own x2, averaged over the window.
            assert e.estimate == pytest.approx(truth[f"oracle_{metric}"], rel=0.05), (start, metric)
            assert e.low <= truth[metric] <= e.high, (start, metric, e, truth[metric])
    # The shifted week's errors are ~1.5x larger: the estimate sees it without labels.
    shifted, before = got[(week2, None, "mae")], got[(DAY0, None, "mae")]
    assert shifted.estimate is not None and before.estimate is not None
    assert shifted.estimate > 1.4 * before.estimate


def test_dle_interval_holds_the_realized_rmse_of_heavy_tailed_windows(spark: SparkSession) -> None:
    """Student-t errors: a 240-row window's RMSE rests on a few rows. Over 40 such windows the
    realized MAE and RMSE fall inside the 90% interval about as often as promised (the
    central-limit interval this replaced covered 0 of 8 bike-rental weeks)."""
    validation = _regression(spark, 6000, 21, 0.0, start=DAY0 - dt.timedelta(days=7), tails=True)
    model = fit_loss_model(validation, features=["x1", "x2"], label="y", prediction="score", order="event_time")
    live = _regression(spark, 40 * 240, 33, 0.0, tails=True)  # 40 windows of 4 hours, 240 rows each
    live = live.withColumn("w", F.timestamp_seconds(F.floor(F.unix_timestamp("event_time") / 14400) * 14400))
    by_four_hours = _by(dle_by_window(live.drop("y").withColumn("event_time", F.col("w")), model,
                                      event_time="event_time", window="hour", level=0.9))
    err = F.col("score") - F.col("y")
    realized = {r["w"]: r for r in live.groupBy("w").agg(F.avg(F.abs(err)).alias("mae"),
                                                          F.sqrt(F.avg(err * err)).alias("rmse")).collect()}
    assert len(realized) == 40
    for metric in ("mae", "rmse"):
        inside = 0
        for window, truth in realized.items():
            e = by_four_hours[(window, None, metric)]
            assert e.rows == 240 and e.low is not None and e.high is not None
            inside += e.low <= truth[metric] <= e.high
        assert inside >= 32, (metric, inside)  # 90% of 40 is 36; 32 or fewer is below it at p < 0.05


def test_dle_gives_a_window_smaller_than_validation_measured_no_interval_and_never_judges_it(
        spark: SparkSession) -> None:
    # A window that just opened: 5 rows, all where errors are largest. Its estimate is shown, but
    # the smallest validation windows (16 rows) say nothing of how far 5 rows stray: no interval,
    # so no estimated decay on 5 rows; the 16-row window beside it keeps its interval.
    validation = _regression(spark, 1000, 1, 0.0, start=DAY0 - dt.timedelta(days=7))
    model = fit_loss_model(validation, features=["x1", "x2"], label="y", prediction="score", order="event_time")
    week2 = DAY0 + dt.timedelta(days=7)
    live = _regression(spark, 16, 5, 0.9).unionByName(_regression(spark, 5, 9, 0.9, start=week2))
    got = _by(dle_by_window(live.drop("y"), model, event_time="event_time", window="week"))
    for metric in ("mae", "rmse"):
        few, enough = got[(week2, None, metric)], got[(DAY0, None, metric)]
        assert few.rows == 5 and few.estimate is not None and few.estimate > model.validation[metric]
        assert (few.low, few.high) == (None, None)
        assert not estimate_breached(few, model.validation[metric], higher_is_better=False, confident=True)
        assert enough.rows == 16 and enough.low is not None and enough.high is not None


def test_the_loss_model_of_a_wide_model_brings_a_bounded_share_of_its_validation_to_the_driver(
        spark: SparkSession, monkeypatch: pytest.MonkeyPatch) -> None:
    # 2 inputs, the prediction and the label: 4 values a row; a bound of 400 values is 100 rows of
    # the 1,000 (a model of 200 inputs meets the real bound, 4M values, at 19,800 rows).
    monkeypatch.setattr("lakeboost.train.loss.MAX_VALUES", 400)
    validation = _regression(spark, 1000, 1, 0.0)
    model = fit_loss_model(validation, features=["x1", "x2"], label="y", prediction="score", order="event_time")
    assert model.validation["rows"] == 100 and model.inputs == ("x1", "x2")
    assert max(model.sizes) == 64  # its window sizes follow the rows it had


def test_dle_refuses_too_few_validation_rows(spark: SparkSession) -> None:
    frame = _regression(spark, 20, 1, 0.0)
    with pytest.raises(TrainingError, match="monitor.estimate_loss"):
        fit_loss_model(frame, features=["x1", "x2"], label="y", prediction="score")


def test_rows_without_an_event_time_belong_to_no_window_and_are_left_out(spark: SparkSession) -> None:
    # A NULL event time made a window of its own (NULL), and sorting the windows on the driver
    # failed (None beside datetimes): the whole estimate was lost for one row.
    validation = _regression(spark, 200, 1, 0.0)
    model = fit_loss_model(validation, features=["x1", "x2"], label="y", prediction="score", order="event_time")
    live = validation.drop("y").withColumn("event_time", F.when(F.col("x1") < 0.1, None)
                                           .otherwise(F.col("event_time")))
    timed = live.where(F.col("event_time").isNotNull()).count()
    assert 0 < timed < 200
    dle = _by(dle_by_window(live, model, event_time="event_time", window="week"))
    assert [(k, e.rows) for k, e in dle.items() if k[2] == "mae"] == [((DAY0, None, "mae"), timed)]
    cbpe = cbpe_by_window(live.withColumn("score", F.col("x1")), event_time="event_time", window="week",
                          threshold=0.5)
    assert {(e.window_start, e.rows) for e in cbpe} == {(DAY0, timed)}


def test_dle_refuses_a_level_beyond_the_quantiles_its_loss_model_stores(spark: SparkSession) -> None:
    # 99.9% would silently be the 99% interval (the stored 0.5% and 99.5% quantiles), labelled 99.9%.
    validation = _regression(spark, 200, 1, 0.0)
    model = fit_loss_model(validation, features=["x1", "x2"], label="y", prediction="score", order="event_time")
    with pytest.raises(EvaluationError, match=r"level: DLE's intervals reach at most 99% .*found 0.999"):
        dle_by_window(validation.drop("y"), model, event_time="event_time", window="day", level=0.999)
    assert dle_by_window(validation.drop("y"), model, event_time="event_time", window="day", level=0.99)


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
