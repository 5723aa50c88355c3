"""Outcome windows and label rates against brute-force pandas oracles on random data with ties,
nulls and late arrivals: an earlier event's outcome counts only once it was known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.durations import parse_duration
from lakeboost.config.features import LabelRateGroup, OutcomeWindowGroup
from lakeboost.features.label_rates import LabelSource, with_label_rate
from lakeboost.features.outcomes import KNOWN_AS_OF, known_column, with_outcome_windows
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

T0 = 1_767_225_600  # 2026-01-01
WINDOWS = ("6h", "1d")
DATASET = DatasetConfig.model_validate({
    "events": "silver.e", "key": ["k1", "k2"], "event_time": "t", "date_column": "d",
    "label": {"kind": "value", "column": "big", "expr": "v > 5", "available_at": "known"},
    "outcomes": {"v": "known"}})
GROUP = OutcomeWindowGroup(entity="g", windows=WINDOWS, aggs={"v": ("sum", "mean", "max", "stddev"), "big": ("mean",)})


def _events(seed: int, rows: int = 400) -> pd.DataFrame:
    """Times on a 10-minute grid over 3 days (many ties); outcomes known 0-40 h later, some
    never (NULL), some stamped before their own event (counted from the event), some NULL values."""
    rng = np.random.default_rng(seed)
    t = T0 + rng.integers(0, 3 * 144, rows) * 600
    delay = rng.choice([0, 600, 3600, 6 * 3600, 20 * 3600, 40 * 3600, -3600], rows)
    known = (t + delay).astype("float")
    known[rng.random(rows) < 0.15] = np.nan
    v = rng.integers(0, 10, rows).astype("float")
    v[rng.random(rows) < 0.2] = np.nan
    return pd.DataFrame({"k1": rng.integers(0, 5, rows), "k2": np.arange(rows), "g": rng.integers(0, 4, rows),
                         "t": t, "known": known, "v": v})


def _spark_events(spark: SparkSession, pdf: pd.DataFrame):
    df = spark.createDataFrame(pdf.astype(object).where(pdf.notna(), None),
                               "k1 long, k2 long, g long, t long, known double, v double")
    return (df.withColumn("t", F.timestamp_seconds("t"))
            .withColumn("known", F.timestamp_seconds(F.col("known").cast("long")))
            .withColumn("d", F.to_date("t")))


def _outcome_oracle(pdf: pd.DataFrame) -> pd.DataFrame:
    known_at = np.where(pdf["known"].isna(), np.nan, np.maximum(pdf["known"], pdf["t"]))
    out = []
    for _, row in pdf.iterrows():
        result = {"k2": row.k2}
        same = pdf[(pdf["g"] == row.g)].assign(known_at=known_at[pdf["g"] == row.g])
        for window in WINDOWS:
            w = parse_duration(window).total_seconds()
            seen = same[(same["known_at"] >= row.t - w) & (same["known_at"] <= row.t - 1)]
            values = seen["v"].dropna()
            big = (seen["v"] > 5).where(seen["v"].notna()).dropna().astype(float)
            result[f"o_known_{window}"] = len(seen)
            result[f"o_v_sum_{window}"] = values.sum() if len(values) else None
            result[f"o_v_mean_{window}"] = values.mean() if len(values) else None
            result[f"o_v_max_{window}"] = values.max() if len(values) else None
            result[f"o_v_stddev_{window}"] = values.std(ddof=1) if len(values) > 1 else None
            result[f"o_big_mean_{window}"] = big.mean() if len(big) else None
        longest = max(parse_duration(w) for w in WINDOWS).total_seconds()
        seen = same[(same["known_at"] >= row.t - longest) & (same["known_at"] <= row.t - 1)]
        result[f"{KNOWN_AS_OF}o"] = seen["known_at"].max() if len(seen) else None
        out.append(result)
    return pd.DataFrame(out).sort_values("k2").reset_index(drop=True)


def _mismatches(got: pd.DataFrame, expected: pd.DataFrame) -> list[tuple]:
    """(key, column, expected, got) wherever the two frames (same row order) differ."""
    return [(int(e["k2"]), c, e[c], g[c]) for (_, g), (_, e) in zip(got.iterrows(), expected.iterrows(), strict=True)
            for c in expected.columns if not _close(e[c], g[c])]


def _close(a, b) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    return b is not None and not (isinstance(b, float) and math.isnan(b)) and abs(float(a) - float(b)) < 1e-9


@pytest.mark.parametrize("seed", [1, 2])
def test_outcome_windows_match_a_brute_force_oracle(spark: SparkSession, seed: int) -> None:
    pdf = _events(seed)
    events = _spark_events(spark, pdf)
    got = (with_outcome_windows(events.select("k1", "k2", "g", "t", "d"), events, name="o", group=GROUP,
                                dataset=DATASET)
           .withColumn(f"{KNOWN_AS_OF}o", F.unix_timestamp(f"{KNOWN_AS_OF}o"))
           .orderBy("k2").toPandas())
    expected = _outcome_oracle(pdf)
    assert len(got) == len(pdf)  # every event kept, none duplicated
    mismatches = _mismatches(got, expected)
    assert not mismatches, mismatches[:10]
    # The oracle is not vacuous: outcomes were counted, and some were still unknown.
    assert expected["o_known_1d"].sum() > 100 and (expected["o_known_1d"] < expected["o_known_1d"].max()).any()


def test_an_outcome_not_yet_known_is_not_counted_however_old_its_event(spark: SparkSession) -> None:
    pdf = pd.DataFrame({"k1": [1, 1, 1], "k2": [1, 2, 3], "g": [7, 7, 7],
                        "t": [T0, T0 + 3600, T0 + 7200], "known": [T0 + 10_000.0, np.nan, T0 + 3600.0],
                        "v": [4.0, 9.0, 1.0]})
    events = _spark_events(spark, pdf)
    got = {r.k2: (r.o_known_1d, r.o_v_sum_1d) for r in with_outcome_windows(
        events.select("k1", "k2", "g", "t", "d"), events, name="o", group=GROUP, dataset=DATASET).collect()}
    # Event 1's outcome is known only at T0+2h46m, event 2's never; event 3's, stamped before its
    # own event, counts from its event's time and never for the event itself.
    assert got == {1: (0, None), 2: (0, None), 3: (0, None)}
    later = pdf.assign(k2=[4, 5, 6], t=[T0 + 20_000] * 3, known=[np.nan] * 3)
    both = _spark_events(spark, pd.concat([pdf, later]))
    at_later = {r.k2: (r.o_known_1d, r.o_v_sum_1d) for r in with_outcome_windows(
        both.select("k1", "k2", "g", "t", "d"), both, name="o", group=GROUP, dataset=DATASET).collect()}
    assert at_later[4] == (2, 5.0)  # outcomes of events 1 and 3, known by then; event 2's still not


MIXED = DatasetConfig.model_validate({
    "events": "silver.e", "key": ["k1", "k2"], "event_time": "t", "date_column": "d",
    "label": {"kind": "value", "column": "big", "expr": "v > 5", "available_at": "known"},
    "outcomes": {"v": "known", "w": "known2"}})
MIXED_AGGS = {"v": ("sum", "mean", "max", "stddev", "pending"), "w": ("count", "min", "pending"), "big": ("mean",)}


def _mixed_oracle(pdf: pd.DataFrame, *, known: str, not_before_event: bool) -> pd.DataFrame:
    """The group's columns by brute force: each column from its own availability, every other
    event's outcome from when it became known (also before its own event when not clamped), the
    event's own never; `pending` counts the window's events not known at t."""
    end = 0 if known == "at_or_before" else -1
    at = {c: (np.fmax(pdf[a], pdf["t"]).where(pdf[a].notna()) if not_before_event else pdf[a])
          for c, a in (("v", "known"), ("big", "known"), ("w", "known2"))}
    value = {"v": pdf["v"], "w": pdf["w"], "big": (pdf["v"] > 5).astype(float).where(pdf["v"].notna())}
    out = []
    for _, row in pdf.iterrows():
        result: dict[str, object] = {"k2": row.k2}
        others = (pdf["g"] == row.g) & (pdf["k2"] != row.k2)
        latest = []
        for window in WINDOWS:
            w = parse_duration(window).total_seconds()
            for column, aggs in MIXED_AGGS.items():
                # w seconds: [t - w, t - 1] (`before`) or [t - w + 1, t] (`at_or_before`).
                seen = others & (at[column] >= row.t - w + 1 + end) & (at[column] <= row.t + end)
                latest += list(at[column][seen & (w == max(parse_duration(x).total_seconds() for x in WINDOWS))])
                values = value[column][seen].dropna()
                for agg in aggs:
                    name = f"o_{column}_{agg}_{window}"
                    if agg == "pending":
                        in_window = others & (pdf["t"] >= row.t - w) & (pdf["t"] <= row.t - 1)
                        usable = at[column] <= row.t + end
                        result[name] = int((in_window & ~usable.fillna(False)).sum())
                    elif agg == "count":
                        result[name] = len(values)
                    elif agg == "sum":
                        result[name] = values.sum() if len(values) else None
                    elif agg == "mean":
                        result[name] = values.mean() if len(values) else None
                    elif agg == "max":
                        result[name] = values.max() if len(values) else None
                    elif agg == "min":
                        result[name] = values.min() if len(values) else None
                    elif agg == "stddev":
                        result[name] = values.std(ddof=1) if len(values) > 1 else None
        result[known_column("o", known)] = max(latest) if latest else None
        out.append(result)
    return pd.DataFrame(out).sort_values("k2").reset_index(drop=True)


@pytest.mark.parametrize(("known", "not_before_event"), [("at_or_before", True), ("before", False),
                                                         ("at_or_before", False)])
def test_outcome_windows_with_their_own_bounds_match_a_brute_force_oracle(
        spark: SparkSession, known: str, not_before_event: bool) -> None:
    """Each column from its own availability; a value known at t usable at t (`at_or_before`);
    outcomes stamped before their own event counted from the stamp; the event's own outcome
    excluded by key; `pending` against the definition. 400 events with ties, NULLs, outcomes
    never known and known before, at and after their own event."""
    pdf = _events(4)
    rng = np.random.default_rng(40)
    pdf["known2"] = (pdf["t"] + rng.choice([0, 0, 600, 7200, 30 * 3600, -1800], len(pdf))).astype("float")
    pdf.loc[rng.random(len(pdf)) < 0.1, "known2"] = np.nan
    pdf["w"] = rng.normal(size=len(pdf)).round(3)
    events = _spark_events(spark, pdf.drop(columns=["known2", "w"])).join(
        spark.createDataFrame(pdf[["k2", "known2", "w"]].astype(object).where(pdf[["k2", "known2", "w"]].notna(), None),
                              "k2 long, known2 double, w double")
        .withColumn("known2", F.timestamp_seconds(F.col("known2").cast("long"))), "k2")
    group = OutcomeWindowGroup(entity="g", windows=WINDOWS, aggs=MIXED_AGGS, count=False, known=known,
                               not_before_event=not_before_event)
    as_of = known_column("o", known)
    got = (with_outcome_windows(events.select("k1", "k2", "g", "t", "d"), events, name="o", group=group,
                                dataset=MIXED)
           .withColumn(as_of, F.unix_timestamp(as_of)).orderBy("k2").toPandas())
    expected = _mixed_oracle(pdf, known=known, not_before_event=not_before_event)
    assert len(got) == len(pdf)  # every event kept, none duplicated
    assert sorted(got.columns) == sorted(["k1", "k2", "g", "t", "d", *expected.columns.drop("k2")])
    mismatches = _mismatches(got[expected.columns], expected)
    assert not mismatches, mismatches[:10]
    # Not vacuous: some events were pending, and some events' own outcomes fell in their own frame
    # (known at or before the event: left out by key, which a frame alone could not do).
    assert expected["o_v_pending_1d"].sum() > 100 and expected["o_w_pending_6h"].sum() > 50
    own_in_frame = (pdf["known"] <= pdf["t"]) if known == "at_or_before" else (pdf["known"] < pdf["t"])
    assert own_in_frame.sum() > 20 if (known == "at_or_before" or not not_before_event) else True


def _label_rate_oracle(events: pd.DataFrame, labels: pd.DataFrame, group: LabelRateGroup) -> pd.DataFrame:
    w = group.window.total_seconds()
    entity_of = events.set_index(["k1", "k2"])["g"]
    labelled = labels.dropna(subset=["reported"]).join(entity_of, on=["lk1", "lk2"], how="inner")
    out = []
    for _, row in events.iterrows():
        seen = events[(events["g"] == row.g) & (events["t"] >= row.t - w) & (events["t"] <= row.t - 1)]
        hits = labelled[(labelled["g"] == row.g) & (labelled["reported"] >= row.t - w)
                        & (labelled["reported"] <= row.t - 1)]
        rate = (len(hits) + group.prior_rate * group.prior_weight) / (len(seen) + group.prior_weight)
        out.append({"k2": row.k2, "r_labels_1d": len(hits), "r_events_1d": len(seen), "r_rate_1d": rate,
                    f"{KNOWN_AS_OF}r": hits["reported"].max() if len(hits) else None})
    return pd.DataFrame(out).sort_values("k2").reset_index(drop=True)


def test_label_rates_match_a_brute_force_oracle(spark: SparkSession) -> None:
    rng = np.random.default_rng(3)
    pdf = _events(3)
    chosen = pdf.sample(frac=0.3, random_state=4)  # a labelled third; reports 0-40 h after, some NULL
    reported = (chosen["t"] + rng.choice([0, 600, 5 * 3600, 30 * 3600, 40 * 3600], len(chosen))).astype(float)
    reported[rng.random(len(chosen)) < 0.1] = np.nan
    labels_pdf = pd.DataFrame({"lk1": chosen["k1"].to_numpy(), "lk2": chosen["k2"].to_numpy(),
                               "reported": reported.to_numpy()})
    events = _spark_events(spark, pdf).select("k1", "k2", "g", "t", "d")
    labels = (spark.createDataFrame(labels_pdf.astype(object).where(labels_pdf.notna(), None),
                                    "lk1 long, lk2 long, reported double")
              .withColumn("reported", F.timestamp_seconds(F.col("reported").cast("long"))))
    group = LabelRateGroup(entity="g", window="1d", prior_rate=0.1, prior_weight=5)
    got = (with_label_rate(events, labels, name="r", group=group, source=LabelSource("x", ("lk1", "lk2"), "reported"),
                           event_key=("k1", "k2"), timestamp="t")
           .withColumn(f"{KNOWN_AS_OF}r", F.unix_timestamp(f"{KNOWN_AS_OF}r"))
           .orderBy("k2").toPandas())
    expected = _label_rate_oracle(pdf, labels_pdf, group)
    assert len(got) == len(pdf)
    mismatches = _mismatches(got, expected)
    assert not mismatches, mismatches[:10]
    assert expected["r_labels_1d"].sum() > 20
