"""Column profiles per window against pandas, slices named as the config says, the score's drift per
slice against a brute-force binning, and row-count shortfalls judged against training's windows."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from lakeboost.config.monitoring import MonitorConfig
from lakeboost.errors import ConfigError
from lakeboost.monitor.drift import Reference, psi
from lakeboost.monitor.measure import row_drop_records
from lakeboost.monitor.profile import Slicer, profile_by, slicers
from lakeboost.monitor.records import MonitorRecord
from pyspark.sql import SparkSession

WEEKS = [dt.datetime(2026, 3, 2), dt.datetime(2026, 3, 9)]


def _frame(seed: int, rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3.0, 1.0, rows)
    amount[rng.random(rows) < 0.12] = np.nan
    return pd.DataFrame({"window_start": [WEEKS[i % 2] for i in range(rows)],
                         "amount": amount, "country": rng.choice(["DE", "FR", "NL", "ES", None], rows,
                                                                  p=[0.5, 0.2, 0.15, 0.1, 0.05]),
                         "score": rng.beta(1, 8, rows)})


def test_each_columns_profile_per_window_equals_pandas(spark: SparkSession) -> None:
    data = _frame(1)
    profile = profile_by(spark.createDataFrame(data.astype(object).where(data.notna(), None)),
                         ["amount", "score"], ["country"], by="window_start")

    assert set(profile) == set(WEEKS)
    for week, part in data.groupby("window_start"):
        got = profile[week]
        assert got["*"] == {"rows": float(len(part))}
        for column in ("amount", "score"):
            values = part[column].dropna().to_numpy()
            # HyperLogLog++ at its default 5% relative standard deviation
            assert got[column].pop("distinct") == pytest.approx(len(np.unique(values)), rel=0.1), column
            expected = {"null_share": part[column].isna().mean(), "min": values.min(), "max": values.max(),
                        "mean": values.mean(),
                        # percentile_approx at accuracy 1,000 is exact below 1,000 values: the smallest
                        # value with at least p of the values at or below it
                        **{name: np.quantile(values, q, method="inverted_cdf")
                           for name, q in (("p05", 0.05), ("p50", 0.5), ("p95", 0.95))}}
            assert got[column] == pytest.approx(expected, rel=1e-9), column
        assert got["country"] == {"null_share": pytest.approx(part["country"].isna().mean()),
                                  "distinct": float(part["country"].nunique())}  # exact on a few values


def test_slices_name_the_trainings_most_frequent_values_and_the_rest_other(spark: SparkSession) -> None:
    reference = spark.createDataFrame(_frame(2).astype(object).where(_frame(2).notna(), None))
    [country] = slicers(reference, reference, ["country"], most=2, table="gold.p")
    assert country == Slicer("country", ("DE", "FR"))
    named = reference.select(country.expr().alias("s")).groupBy("s").count()
    expected = _frame(2)["country"].map(lambda c: "NULL" if c is None else c if c in ("DE", "FR") else "other")
    assert {r["s"]: r["count"] for r in named.collect()} == {f"country={k}": v
                                                            for k, v in expected.value_counts().items()}
    with pytest.raises(ConfigError, match=r"monitor.slices: 'channel' is not in the training set or "
                                          r"gold.p's scored inputs"):
        slicers(reference, reference, ["channel"], most=2, table="gold.p")


def test_the_scores_drift_per_slice_is_against_the_same_slice_of_training(spark: SparkSession) -> None:
    from lakeboost.monitor.drift import numeric_drift_by_slice

    ref_pd, cur_pd = _frame(3, 2000), _frame(4, 600)
    cur_pd.loc[cur_pd["country"] == "FR", "score"] *= 3  # FR's scores moved; the others did not
    to_spark = lambda df: spark.createDataFrame(df.astype(object).where(df.notna(), None))  # noqa: E731
    reference = Reference(to_spark(ref_pd))
    part = Slicer("country", ("DE", "FR"))
    results = dict(numeric_drift_by_slice(reference, to_spark(cur_pd), "score", slice_by=part.expr(),
                                          by="window_start"))

    deciles = reference.numeric(["score"])[0]["score"]

    def shares(values: pd.Series) -> list[float]:  # bin = how many edges lie below the value
        bins = [int(np.sum(np.asarray(deciles) < v)) for v in values]
        return [bins.count(i) / len(bins) for i in range(len(deciles) + 1)] + [0.0]

    def slice_of(df: pd.DataFrame, value: str) -> pd.DataFrame:
        named = df["country"].map(lambda c: "NULL" if c is None else c if c in ("DE", "FR") else "other")
        return df[named == value]

    assert {k for k in results} == {(w, f"country={v}") for w in WEEKS for v in ("DE", "FR", "other", "NULL")}
    for (week, value), result in results.items():
        expected = psi(shares(slice_of(ref_pd, value.split("=")[1])["score"]),
                       shares(slice_of(cur_pd[cur_pd["window_start"] == week], value.split("=")[1])["score"]))
        assert result.psi == pytest.approx(expected, rel=1e-6), (week, value)
    # Among the slices large enough to judge (DE ~150 rows a week, FR ~60), FR's alone moved.
    assert all(results[(w, "country=FR")].psi > 0.5 and results[(w, "country=DE")].psi < 0.2 for w in WEEKS), {
        k: round(r.psi, 3) for k, r in results.items()}


def _record(window, kind, subject, metric, value, threshold, status="ok", cause=None) -> MonitorRecord:
    breached = value is not None and threshold is not None and value >= threshold
    return MonitorRecord("gold.p", window, 1, kind, subject, metric, value, threshold, breached, 0, status,
                         cause if breached else None)


def test_a_window_with_far_fewer_rows_than_trainings_is_missing_data_pro_rata_at_the_edges() -> None:
    week = dt.timedelta(weeks=1)
    start = dt.datetime(2026, 1, 5)
    # Training: a partial first and last week (left out), whole weeks of 900-1,100 rows.
    training = {start + i * week: n for i, n in enumerate([300, 1000, 950, 1100, 900, 1050, 200])}
    live = dt.datetime(2026, 3, 2)
    rows = {live: 500,                # the table starts mid-week: half a week covered, 500 is normal
            live + week: 980,         # normal
            live + 2 * week: 300,     # the feed was cut: 70% short
            live + 3 * week: 40}      # the table ends a day in: a sliver, not judged
    covered = (live + dt.timedelta(days=3, hours=12), live + 3 * week + dt.timedelta(hours=20))
    weekly = MonitorConfig(window="week")
    records = {r.window_start: r for r in row_drop_records(rows, training, covered, weekly, _record)}

    assert {w: (round(r.value, 3) if r.value is not None else None, r.breached, r.status)
            for w, r in records.items()} == {
        live: (0.0, False, "ok"), live + week: (0.02, False, "ok"),
        live + 2 * week: (round(1 - 300 / 1000, 3), True, "ok"),
        live + 3 * week: (None, False, "partial_window")}
    assert records[live + 2 * week].threshold == 0.5
    assert records[live + 2 * week].cause.startswith("missing upstream data")
    # Training's own weeks falling 60% short raise the bar to 0.6: 70% is still a breach, 55% not.
    uneven = {**training, start + 2 * week: 400}
    judged = row_drop_records({live + week: 450, live + 2 * week: 300}, uneven, (live, live + 3 * week),
                              MonitorConfig(window="week"), _record)
    assert [(round(r.threshold, 2), r.breached) for r in judged] == [(0.6, False), (0.6, True)]
    assert row_drop_records(rows, training, covered, MonitorConfig(window="week", max_row_drop=None), _record) == []


def _two_slice_columns(seed: int, rows: int) -> pd.DataFrame:
    df = _frame(seed, rows)
    df["channel"] = np.random.default_rng(seed + 100).choice(["web", "app", "pos"], rows, p=[0.6, 0.3, 0.1])
    df["tier"] = [f"t{i % 4}" for i in range(rows)]
    return df


def test_more_slice_columns_cost_no_more_spark_jobs_and_each_gets_what_it_would_alone(spark: SparkSession) -> None:
    """The monitor's slices are counted per slice column in the same aggregations: a run's jobs do
    not grow with `monitor.slices`, and each column's results equal a run of it alone."""
    from lakeboost.monitor.drift import numeric_drift_by_slice, numeric_drift_by_slices
    from lakeboost.monitor.profile import slice_values

    from tests.helpers import spark_jobs

    to_spark = lambda df: spark.createDataFrame(df.astype(object).where(df.notna(), None))  # noqa: E731
    ref_df, cur_df = to_spark(_two_slice_columns(5, 2000)), to_spark(_two_slice_columns(6, 600))
    columns = ["country", "channel", "tier"]

    values, many = spark_jobs(spark, lambda: slice_values(ref_df, columns, most=2))
    _, one = spark_jobs(spark, lambda: slice_values(ref_df, ["country"], most=2))
    assert many == one <= 3  # one aggregation and its ranking (and their adaptive stages' jobs)
    assert [Slicer(c, values[c]) for c in columns] == [s for c in columns
                                                         for s in slicers(ref_df, ref_df, [c], most=2, table="gold.p")]
    assert values["country"] == ("DE", "FR") and len(values["channel"]) == 2

    parts = [Slicer(c, values[c]).expr() for c in columns]
    reference = Reference(ref_df)
    reference.numeric(["score"])  # the reference's edges, as the monitor prepares them once a run
    (results, rows), together = spark_jobs(spark, lambda: numeric_drift_by_slices(
        reference, cur_df, "score", slices=parts, by="window_start"))
    assert together <= 4  # the reference's side and the current side, whatever the slice columns
    # A second table of the run reuses the reference's side: the current side's job alone.
    assert spark_jobs(spark, lambda: numeric_drift_by_slices(reference, cur_df, "score", slices=parts,
                                                             by="window_start"))[1] <= 2
    for part in parts:
        separate = dict(numeric_drift_by_slice(Reference(ref_df), cur_df, "score", slice_by=part, by="window_start"))
        mine = {k: r for k, r in results if k in separate}
        assert mine.keys() == separate.keys() and all(mine[k] == separate[k] for k in separate)
    counted = cur_df.groupBy("window_start", parts[1].alias("s")).count().collect()
    assert {(r["window_start"], r["s"]): r["count"] for r in counted} == {
        k: n for k, n in rows.items() if k[1].startswith("channel=")}
