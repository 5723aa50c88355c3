"""The noise bar on seeded data: a feature shared by many rows gets a bar its own training spans
reach, a real shift still clears it, and independent rows keep it near zero."""

from __future__ import annotations

import datetime as dt

from lakeboost.config.monitoring import MonitorConfig
from lakeboost.monitor.drift import Reference, numeric_drift, numeric_drift_by, psi
from lakeboost.monitor.measure import _noise, _size_class, consecutive_drift, missing_data_record
from lakeboost.monitor.noise import reference_noise
from lakeboost.monitor.records import MonitorRecord
from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def _clustered(spark: SparkSession, first_day: int, days: int, scale: float = 1.0):
    """300 events a day over 25 merchants; a merchant's feature value is its own level plus a
    wobble drawn anew each week, so a day's 300 rows hold only 25 independent values."""
    rows = spark.range(first_day * 300, (first_day + days) * 300)
    week = (F.col("id") / 300 / 7).cast("int")
    merchant = F.col("id") % 25
    level = (F.abs(F.hash(merchant)) % 1000).cast("double")
    wobble = (F.abs(F.hash(merchant, week)) % 300).cast("double")
    return rows.select(F.timestamp_seconds((F.col("id") / 300 * 86400).cast("long")).alias("t"),
                       ((level + wobble) * scale).alias("x"), merchant.cast("string").alias("m"))


def test_reference_noise_lifts_the_bar_for_features_shared_by_many_rows(spark: SparkSession) -> None:
    reference = _clustered(spark, 0, 28)
    next_day = _clustered(spark, 29, 1)
    shifted = _clustered(spark, 29, 1, scale=2.5)

    noise = reference_noise(reference, ["x"], [], time_column="t", rows=300, quantile=0.95)
    same = numeric_drift(reference, next_day, ["x"])[0]
    moved = numeric_drift(reference, shifted, ["x"])[0]

    # Nothing changed, yet a day's 25 merchant values read as drift against the 0.2 bar; the
    # reference's own days differ as much, and the bar rises with them.
    assert same.psi > 0.2
    assert noise["x"].spans == 28 and noise["x"].psi >= same.psi
    # A real shift (every value x 2.5) still clears the raised bar.
    assert moved.psi > noise["x"].psi
    # Independent rows: the spans agree with the whole, and the bar stays near zero.
    independent = spark.range(28 * 300).select(F.timestamp_seconds((F.col("id") / 300 * 86400).cast("long")).alias("t"),
                                               F.rand(seed=3).alias("x"))
    assert reference_noise(independent, ["x"], [], time_column="t", rows=300, quantile=0.95)["x"].psi < 0.1


def _seasonal(spark: SparkSession, first_day: int, days: int, per_day: int = 300, null_share: float = 0.02):
    """A weather-like feature: a level that climbs day by day (the reference's own weeks differ
    a lot, so its PSI bar is high), NULL in `null_share` of rows (a sensor's gaps)."""
    rows = spark.range(first_day * per_day, (first_day + days) * per_day)
    day = (F.col("id") / per_day).cast("int")
    value = day.cast("double") * 0.5 + F.randn(seed=first_day) * 3
    return rows.select(F.timestamp_seconds((F.col("id") * 86400 / per_day).cast("long")).alias("t"),
                       F.when(F.rand(seed=first_day + 1) < null_share, None).otherwise(value).alias("temp"))


def _record(table="gold.p"):
    def record(window, kind, subject, metric, value, threshold, status="ok", cause=None):
        breached = value is not None and threshold is not None and value >= threshold
        return MonitorRecord(table, window, 1, kind, subject, metric, value, threshold, breached, 0, status,
                             cause if breached else None)
    return record


def test_a_feed_cut_off_mid_period_is_missing_data_though_its_psi_stays_under_the_seasonal_bar(
        spark: SparkSession) -> None:
    """Weekly windows of a seasonal feature: the week after training, then a week where the feed
    stopped for 46% of the rows. The seasonal bar absorbs the PSI of both (what was judged
    before: no alert); the NULL share's rise, judged on its own, breaches in the cut week only."""
    reference = Reference(_seasonal(spark, 0, 56))
    normal = _seasonal(spark, 56, 7).withColumn("w", F.lit("normal"))
    cut = _seasonal(spark, 63, 7, null_share=0.46).withColumn("w", F.lit("cut"))
    results = dict(numeric_drift_by(reference, normal.unionByName(cut), ["temp"], by="w"))
    bar = reference_noise(reference, ["temp"], [], time_column="t", rows=7 * 300, quantile=1.0)["temp"]
    assert results["cut"].psi < bar.psi and results["normal"].psi < bar.psi  # PSI alone: no alert
    records = {w: missing_data_record(r, w, bar, _record()) for w, r in results.items()}
    assert records["cut"].breached and not records["normal"].breached
    assert records["cut"].kind == "missing_data" and records["cut"].value > 0.4
    assert records["cut"].cause.startswith("missing upstream data: NULL in 45% of the window's rows against 2%")


def test_a_partial_window_is_held_to_the_bar_of_its_own_size(spark: SparkSession) -> None:
    """A full week (2,100 rows) and a partial one (600): each gets a bar from reference spans of
    its own size; smaller spans differ more, so the partial week's bar is the higher one, and the
    full week is not held to it (before, every window got the smallest window's bar)."""
    # Independent rows: two spans differ by sampling alone, more the smaller they are.
    reference = Reference(spark.range(56 * 300).select(
        F.timestamp_seconds((F.col("id") / 300 * 86400).cast("long")).alias("t"), F.rand(seed=11).alias("x")))
    rows = {dt.datetime(2026, 3, 2): 2100, dt.datetime(2026, 3, 9): 600}
    bars = _noise(MonitorConfig(min_window_rows=100), reference, ["x"], [], "t", rows)
    assert set(bars) == {_size_class(2100), _size_class(600)} and _size_class(2100) != _size_class(600)
    assert bars[_size_class(600)]["x"].psi > bars[_size_class(2100)]["x"].psi
    assert _size_class(2100) == _size_class(4000) and _size_class(2100) != _size_class(2000)  # [2^11, 2^12)


def test_drift_between_consecutive_windows_is_recorded_from_their_shares(spark: SparkSession) -> None:
    """Three weeks: the second like the first, the third shifted. PSI against the previous week
    equals psi() of the two weeks' shares on the reference's bins, small then large."""
    reference = Reference(_seasonal(spark, 0, 28, null_share=0.0))
    weeks = [_seasonal(spark, 28, 7, null_share=0.0).withColumn("w", F.lit("1")),
             _seasonal(spark, 28, 7, null_share=0.0).withColumn("w", F.lit("2")),
             _seasonal(spark, 28, 7, null_share=0.0).withColumn("temp", F.col("temp") + 8).withColumn("w", F.lit("3"))]
    results = numeric_drift_by(reference, weeks[0].unionByName(weeks[1]).unionByName(weeks[2]), ["temp"], by="w")
    records = consecutive_drift(results, _record())
    by_week = dict(results)
    assert [(r.window_start, r.kind, r.subject, r.threshold, r.breached) for r in records] == [
        ("2", "window_drift", "temp", None, False), ("3", "window_drift", "temp", None, False)]
    assert records[0].value == psi(by_week["1"].current_shares, by_week["2"].current_shares) < 0.05
    assert records[1].value == psi(by_week["2"].current_shares, by_week["3"].current_shares) > 0.5


def test_noise_bars_of_several_window_sizes_come_from_one_aggregation_kept_for_the_run(spark: SparkSession) -> None:
    """Each size's bars equal its own `reference_noise`; asked again (the next table of the run),
    they cost no Spark job."""
    from lakeboost.monitor.noise import reference_noises

    from tests.helpers import spark_jobs

    frame = _clustered(spark, 0, 28)
    reference = Reference(frame)
    reference.numeric(["x"]), reference.categorical(["m"])  # binned once a run, before any table
    reference_noises(reference, ["x"], ["m"], time_column="t", sizes=[10**9], quantile=0.9)  # the time range
    bars, jobs = spark_jobs(spark, lambda: reference_noises(reference, ["x"], ["m"], time_column="t",
                                                            sizes=[300, 2100, 700], quantile=0.9))
    assert jobs <= 2  # one aggregation for every size and both kinds of feature
    for rows in (300, 700, 2100):
        alone = reference_noise(Reference(frame), ["x"], ["m"], time_column="t", rows=rows, quantile=0.9)
        assert bars[rows] == alone and set(alone) == {"x", "m"}, rows
    again, jobs = spark_jobs(spark, lambda: reference_noises(reference, ["x"], ["m"], time_column="t",
                                                             sizes=[700], quantile=0.9))
    assert jobs == 0 and again == {700: bars[700]}
    # Larger than half the reference: no two spans to compare.
    assert reference_noises(reference, ["x"], [], time_column="t", sizes=[28 * 300], quantile=0.9) == {28 * 300: {}}
