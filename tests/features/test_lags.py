"""Lags and previous events against pandas `shift` oracles on generated data with gaps, ties,
NULL values and outcomes known late, never or at exactly the event's time (both `known` modes);
an incremental build with lags equals a full one."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from chispa import assert_df_equality
from lakeboost.config import load_config
from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.durations import parse_duration
from lakeboost.config.features import FeatureSetConfig, LagGroup, PreviousGroup
from lakeboost.config.model import StorageConfig
from lakeboost.errors import ConfigError
from lakeboost.features.build import build_feature_set, reach_days
from lakeboost.features.compute import compute_features
from lakeboost.features.lags import with_lags, with_previous
from lakeboost.features.outcomes import known_column
from lakeboost.features.spec import feature_spec, feature_table_columns, spec_digest
from lakeboost.io import TableCatalog
from lakeboost.score.live_features import live_features
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

T0 = 1_767_225_600  # 2026-01-01 00:00 UTC
HOUR = 3600
DATASET = DatasetConfig.model_validate({
    "events": "silver.e", "key": ["k1", "k2"], "event_time": "t", "date_column": "d",
    "label": {"kind": "value", "column": "big", "expr": "late > 5", "available_at": "known"},
    "outcomes": {"late": "known"}})
SCHEMA = "k1 long, k2 long, g long, t long, v double, late double, known double"


def _spark(spark: SparkSession, pdf: pd.DataFrame) -> DataFrame:
    df = spark.createDataFrame(pdf[["k1", "k2", "g", "t", "v", "late", "known"]].astype(object)
                               .where(pdf.notna(), None), SCHEMA)
    return (df.withColumn("t", F.timestamp_seconds("t"))
            .withColumn("known", F.timestamp_seconds(F.col("known").cast("long")))
            .withColumn("d", F.to_date("t")))


def _hourly(seed: int) -> pd.DataFrame:
    """3 stations x 5 days of hours, 15% of the hours missing, 5% twice (a tie, another key),
    10% NULL values; `late` is known at the end of its hour (the next hour's start), 5 h later,
    or never."""
    rng = np.random.default_rng(seed)
    grid = pd.DataFrame([(g, T0 + h * HOUR) for g in range(3) for h in range(5 * 24)], columns=["g", "t"])
    kept = grid[rng.random(len(grid)) > 0.15]
    rows = pd.concat([kept, kept[rng.random(len(kept)) < 0.05]], ignore_index=True)
    n = len(rows)
    rows["k1"], rows["k2"] = rng.integers(0, 3, n), np.arange(n)
    rows["v"] = rng.integers(0, 50, n).astype(float)
    rows.loc[rng.random(n) < 0.1, "v"] = np.nan
    rows["late"] = rng.integers(0, 10, n).astype(float)
    rows.loc[rng.random(n) < 0.1, "late"] = np.nan
    rows["known"] = (rows["t"] + rng.choice([HOUR, HOUR, HOUR, 5 * HOUR], n)).astype(float)
    rows.loc[rng.random(n) < 0.1, "known"] = np.nan
    return rows


def _features(spark_df: DataFrame, columns: list[str]) -> pd.DataFrame:
    """The columns, times as epoch seconds, sorted by key."""
    times = [F.col(c).cast("double").alias(c) if c.startswith("_known") else F.col(c) for c in columns]
    return spark_df.select(*times).toPandas().sort_values("k2").reset_index(drop=True)


def _lag_oracle(pdf: pd.DataFrame, group: LagGroup, name: str) -> pd.DataFrame:
    """Each station's series reindexed onto every hour (a tie: the greatest key's row), shifted
    by k hours, read at each event's hour, then masked unless known at t."""
    series = (pdf.assign(big=(pdf["late"] > 5).where(pdf["late"].notna()).astype(float), at=pdf["t"].astype(float))
              .sort_values(["k1", "k2"]).drop_duplicates(["g", "t"], keep="last").set_index(["g", "t"]))
    hours = np.arange(T0 - 200 * HOUR, T0 + 200 * HOUR, HOUR)
    out = pdf[["k2"]].copy()
    used = []
    for column, lags in group.columns.items():
        known = "at" if column == "v" else "known"
        for lag in lags:
            k = int(parse_duration(lag).total_seconds()) // HOUR
            shifted = {}
            for g, one in series.groupby(level="g"):
                regular = one.droplevel("g").reindex(hours)[[column, known]]
                shifted[g] = regular.shift(k)
            values = pd.concat(shifted, names=["g", "t"])
            at_t = values.reindex(pd.MultiIndex.from_frame(pdf[["g", "t"]])).to_numpy()
            usable = (at_t[:, 1] <= pdf["t"]) if group.known == "at_or_before" else (at_t[:, 1] < pdf["t"])
            out[f"{name}_{column}_lag_{lag}"] = np.where(usable, at_t[:, 0], np.nan)
            used.append(np.where(usable, at_t[:, 1], np.nan))
    out[known_column(name, group.known)] = np.nanmax(np.vstack(used), axis=0) if used else np.nan
    return out


def _irregular(seed: int, rows: int = 300) -> pd.DataFrame:
    """Events of 4 shops on a 10-minute grid over 2 days (ties); `late` known 0-3 h later
    (often at exactly another event's time), some never; some NULL values."""
    rng = np.random.default_rng(seed)
    t = T0 + rng.integers(0, 2 * 144, rows) * 600
    pdf = pd.DataFrame({"k1": rng.integers(0, 3, rows), "k2": np.arange(rows), "g": rng.integers(0, 4, rows), "t": t})
    pdf["v"] = rng.integers(0, 50, rows).astype(float)
    pdf.loc[rng.random(rows) < 0.1, "v"] = np.nan
    pdf["late"] = rng.integers(0, 10, rows).astype(float)
    pdf.loc[rng.random(rows) < 0.1, "late"] = np.nan
    pdf["known"] = (t + rng.choice([0, 600, 1800, 3 * HOUR], rows)).astype(float)
    pdf.loc[rng.random(rows) < 0.1, "known"] = np.nan
    return pdf


def _previous_oracle(pdf: pd.DataFrame, group: PreviousGroup, name: str) -> pd.DataFrame:
    """`groupby(shop).shift(i)` over events ordered by time then key, read at the first event
    of each event's second (events at the same second are not previous), then masked by
    `within` and by whether the value was known at t."""
    ordered = pdf.assign(big=(pdf["late"] > 5).where(pdf["late"].notna()).astype(float), at=pdf["t"].astype(float),
                         ).sort_values(["g", "t", "k1", "k2"]).reset_index(drop=True)
    ordered["pos"] = ordered.groupby("g").cumcount()
    first_of_second = ordered["pos"] == ordered.groupby(["g", "t"])["pos"].transform("min")
    within = parse_duration(group.within).total_seconds()
    out = ordered[["k2", "g", "t"]].copy()
    used = []
    for column in group.columns:
        known = "at" if column == "v" else "known"
        for i in range(1, group.n + 1):
            shifted = ordered.groupby("g")[[column, known, "t"]].shift(i).rename(
                columns={column: "value", known: "known_at", "t": "prev_t"})
            tie_first = pd.concat([ordered[["g", "t"]], shifted], axis=1)[first_of_second]
            prev = ordered[["g", "t"]].merge(tie_first, on=["g", "t"], how="left")
            bound = (prev["known_at"] <= ordered["t"]) if group.known == "at_or_before" \
                else (prev["known_at"] < ordered["t"])
            usable = bound & (prev["prev_t"] >= ordered["t"] - within)
            out[f"{name}_{column}_prev{i}"] = np.where(usable, prev["value"], np.nan)
            used.append(np.where(usable, prev["known_at"], np.nan))
    out[known_column(name, group.known)] = np.nanmax(np.vstack(used), axis=0)
    return out.drop(columns=["g", "t"]).sort_values("k2").reset_index(drop=True)


@pytest.mark.filterwarnings("ignore:All-NaN slice encountered")
@pytest.mark.parametrize("known", ["before", "at_or_before"])
def test_lags_match_a_reindexed_shift_oracle(spark: SparkSession, known: str) -> None:
    pdf = _hourly(seed=11)
    group = LagGroup(entity="g", columns={"v": ("1h", "2h", "24h"), "late": ("1h", "24h"), "big": ("1h",)},
                     known=known)
    df = _spark(spark, pdf)
    computed = with_lags(df, df, name="st", group=group, dataset=DATASET)
    columns = ["k2", *[f"st_{c}_lag_{k}" for c, lags in group.columns.items() for k in lags],
               known_column("st", group.known)]
    got = _features(computed, columns)
    expected = _lag_oracle(pdf, group, "st").sort_values("k2").reset_index(drop=True)[columns]
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    # The oracle's data has every case: gaps, ties, NULL values, outcomes known at exactly t.
    assert len(pdf) > 300 and pdf.duplicated(["g", "t"]).sum() >= 10
    late = expected["st_late_lag_1h"].notna().sum()
    assert (late > 100) if known == "at_or_before" else (late == 0)  # `late` is known 1h after its hour at best
    assert expected["st_v_lag_1h"].isna().sum() > 30 and expected["st_v_lag_24h"].notna().sum() > 150


@pytest.mark.filterwarnings("ignore:All-NaN slice encountered")
@pytest.mark.parametrize("known", ["before", "at_or_before"])
def test_previous_events_match_a_shift_oracle(spark: SparkSession, known: str) -> None:
    pdf = _irregular(seed=5)
    group = PreviousGroup(entity="g", columns=("v", "late", "big"), n=3, within="2h", known=known)
    df = _spark(spark, pdf)
    computed = with_previous(df, df, name="shop", group=group, dataset=DATASET)
    columns = ["k2", *[f"shop_{c}_prev{i}" for c in group.columns for i in range(1, 4)],
               known_column("shop", group.known)]
    got = _features(computed, columns)
    expected = _previous_oracle(pdf, group, "shop")[columns]
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert pdf.duplicated(["g", "t"]).sum() > 30
    assert expected["shop_v_prev3"].notna().sum() > 50 and expected["shop_late_prev1"].notna().sum() > 20


def test_lags_in_an_incremental_build_equal_a_full_build(spark: SparkSession, tmp_path: Path) -> None:
    dataset = DATASET.model_copy(update={"events": "silver.events"})
    features = FeatureSetConfig.model_validate({
        "lags": {"st": {"entity": "g", "columns": {"v": ["1h", "1d"], "late": ["2h"]}, "known": "at_or_before"}},
        "previous": {"near": {"entity": "g", "columns": ["v", "late"], "n": 2, "within": "3h"}}})
    assert reach_days(features) == 1
    pdf = _hourly(seed=3)
    pdf = pdf[(pdf["t"] < T0 + 3 * 24 * HOUR) & (pdf["g"] < 2)]
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    catalog.write(_spark(spark, pdf), "silver.events")
    assert build_feature_set(catalog, "feats", features, dataset)["mode"] == "full"

    # A late record for day 2 at 10:00 (reaching its station's lag 1d on day 3), a new day, and
    # an outcome of day 1 whose availability moves.
    late = pd.DataFrame({"k1": [9, 9], "k2": [10_000, 10_001], "g": [1, 1], "t": [T0 + 34 * HOUR, T0 + 80 * HOUR],
                         "v": [500.0, 7.0], "late": [9.0, 1.0], "known": [T0 + 35 * HOUR, np.nan]})
    catalog.write(_spark(spark, late), "silver.events")
    catalog.delta_table("silver.events").update("k2 = 5", {"known": "known - INTERVAL 50 MINUTES"})
    incremental = build_feature_set(catalog, "feats", features, dataset)
    assert incremental["mode"] == "incremental" and incremental["rows_recomputed"] < len(pdf) / 2
    built = catalog.read("gold.feats", version=incremental["version"])
    full = compute_features(catalog.read("silver.events"), features=features, dataset=dataset)
    assert built.columns == feature_table_columns(features, dataset)
    assert_df_equality(built, full, ignore_row_order=True, ignore_nullable=True)
    reached = full.filter(F.col("t") == F.timestamp_seconds(F.lit(T0 + 58 * HOUR))).filter("g = 1").first()
    assert reached.st_v_lag_1d == 500.0  # the late record reaches a day ahead


def test_live_scoring_reads_the_history_lags_and_previous_events_need(spark: SparkSession, tmp_path: Path) -> None:
    """A micro-batch of live events, over the history `score.live_features` reads for it, gets
    the features a batch build gives the same events."""
    features = FeatureSetConfig.model_validate({
        "lags": {"st": {"entity": "g", "columns": {"v": ["1h", "1d"], "late": ["1h"]}, "known": "at_or_before"}},
        "previous": {"near": {"entity": "g", "columns": ["v", "big"], "n": 2, "within": "3h"}}})
    pdf = _hourly(seed=7)
    pdf = pdf[pdf["t"] < T0 + 3 * 24 * HOUR]
    events = _spark(spark, pdf)
    first = T0 + 60 * HOUR
    live = events.filter(F.col("t") >= F.timestamp_seconds(F.lit(first))).filter(F.col("g") < 2)
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    scored = live_features(catalog, features, DATASET, live, dt.datetime.fromtimestamp(first, dt.UTC).replace(
        tzinfo=None), past=events)
    batch = compute_features(events, features=features, dataset=DATASET).join(live.select("k1", "k2"),
                                                                               ["k1", "k2"], "left_semi")
    assert_df_equality(scored.select(*batch.columns), batch, ignore_row_order=True, ignore_nullable=True)
    assert batch.filter(F.col("st_v_lag_1d").isNotNull()).count() > 10  # a day back: beyond the batch


DELIVERIES_CONF = Path(__file__).resolve().parents[2] / "examples" / "deliveries" / "conf"


@pytest.mark.parametrize(("override", "message"), [
    ("gold.features.order_features.lags={prev: {entity: shop, columns: {placed_at: [1h], late: [1d]}}}",
     r"gold.features.order_features.lags.prev.columns: \['placed_at'\] are not value columns of "
     r"silver.orders_enriched"),
    ("gold.features.order_features.lags={prev: {entity: shop, columns: {weight_kg: [0s, 1h]}}}",
     r"gold.features.order_features.lags.prev.columns.weight_kg: lags \['0s'\] look no period back"),
    ("gold.features.order_features.previous={prev: {entity: shop, columns: [late], n: 0}}",
     r"gold.features.order_features.previous.prev.n: Input should be greater than or equal to 1"),
    ("gold.features.order_features.previous={prev: {entity: shop, columns: [shop]}}",
     r"gold.features.order_features.previous.prev.columns: \['shop'\] are not value columns"),
    ("gold.features.order_features.previous={shop_deliveries: {entity: shop, columns: [late]}}",
     r"gold.features.order_features.previous.shop_deliveries: 'shop_deliveries' also names an outcome window"),
])
def test_lag_and_previous_config_errors_name_the_key(override: str, message: str) -> None:
    environ = {"SHOPS_JDBC_URL": "jdbc:sqlite:x"}
    with pytest.raises(ConfigError, match=message):
        load_config("local", [override], conf_dir=DELIVERIES_CONF, environ=environ)
    valid = "gold.features.order_features.previous={prev: {entity: shop, columns: [weight_kg, late], n: 2}}"
    assert load_config("local", [valid], conf_dir=DELIVERIES_CONF, environ=environ).gold.features[
        "order_features"].previous["prev"].within == parse_duration("30d")


def test_the_spec_of_lags_over_an_outcome_covers_its_availability() -> None:
    """A changed availability SQL of a lagged outcome changes the digest (a full rebuild); a
    feature set without lags digests as before the lags existed."""
    features = FeatureSetConfig.model_validate({"lags": {"st": {"entity": "g", "columns": {"late": ["1h"]}}}})
    moved = DATASET.model_copy(update={"outcomes": {"late": "known + INTERVAL 1 HOUR"}})
    assert spec_digest(feature_spec(features, DATASET)) != spec_digest(feature_spec(features, moved))
    plain = FeatureSetConfig.model_validate({"passthrough": ["v"]})
    assert "lag_outcomes" not in feature_spec(plain, DATASET)
    assert spec_digest(feature_spec(plain, DATASET)) == spec_digest(feature_spec(plain, moved))


def test_a_column_the_events_lack_is_a_config_error_naming_the_group(spark: SparkSession) -> None:
    events = _spark(spark, _irregular(seed=1, rows=5))
    with pytest.raises(ConfigError, match=r"lags.st.columns: \['nope'\] are neither columns of silver.e"):
        with_lags(events, events, name="st", group=LagGroup(entity="g", columns={"nope": ("1h",)}), dataset=DATASET)
