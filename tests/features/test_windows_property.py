"""Data that arrives at or after t never changes a feature at t.

Random small histories of two customers over three days, a cut instant t, and what arrives
from t on: new events (at t or later; some whose outcome is stamped before its own event, as
a skewed clock would), outcomes of earlier events becoming known (or their values revised
before they were known), labels reported. The features of every event at or before t
(trailing windows, outcome windows, label rates) are the same with or without it.
"""

from __future__ import annotations

import datetime as dt

from chispa import assert_df_equality
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.features import FeatureSetConfig
from lakeboost.features.compute import compute_features
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from tests.features import small_lake

DATASET = DatasetConfig.model_validate(small_lake.APPLICATION["dataset"])
FEATURES = FeatureSetConfig.model_validate({
    "passthrough": ["amount"],
    "groups": {"cust": {"entity": "customer_id", "windows": ["2h", "1d"], "aggs": {"amount": ["sum", "max", "mean"]},
                        "time_since_last": True}},
    "outcome_windows": {"cust_settled": {"entity": "customer_id", "windows": ["6h", "1d"],
                                         "aggs": {"settled": ["sum", "max"]}}},
    "label_rates": {"merch_cb": {"entity": "merchant_id", "window": "1d"}},
})
HOURS = 72
Hour = st.integers(0, HOURS)
MaybeHour = st.one_of(st.none(), st.integers(0, HOURS + 18))


def hour(h: int | None) -> dt.datetime | None:
    return None if h is None else small_lake.START + dt.timedelta(hours=h)


@st.composite
def histories(draw: st.DrawFn) -> dict:
    """Base events (customer, merchant, hour, amount, settled hour), labels, a cut hour and
    what arrives from the cut on."""
    events = draw(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1), Hour, st.integers(1, 9), MaybeHour),
                           min_size=1, max_size=10))
    # Ties are where leaks hide: the cut is often an event's instant, and so is what comes later.
    cut = draw(st.one_of(st.sampled_from([e[2] for e in events]), Hour))
    from_cut = st.one_of(st.just(cut), st.integers(cut, HOURS))
    later = draw(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1), from_cut, st.integers(1, 9), MaybeHour),
                          max_size=4))
    # Outcomes not known before the cut: now known (from the cut on) with a revised value.
    pending = [i for i, e in enumerate(events) if e[4] is None or e[4] >= cut]
    known = draw(st.lists(st.tuples(st.sampled_from(pending), st.integers(cut, HOURS + 18), st.integers(1, 9)),
                          max_size=3)) if pending else []
    labels = draw(st.lists(st.tuples(st.integers(0, len(events) - 1), Hour), max_size=3))
    reported = draw(st.lists(st.tuples(st.integers(0, len(events) + len(later) - 1), st.integers(cut, HOURS + 18)),
                             max_size=3))
    return {"events": events, "cut": cut, "later": later, "known": known, "labels": labels, "reported": reported}


def _events(spark: SparkSession, rows: list[tuple], *, first: int = 0, outcomes: dict | None = None) -> list[tuple]:
    out = []
    for i, (customer, merchant, h, amount, settled_h) in enumerate(rows, start=first):
        value, settled_h = (outcomes or {}).get(i, (float(amount % 4), settled_h))
        out.append((f"E{i}", customer, f"M{merchant}", hour(h), float(amount), value, hour(settled_h)))
    return out


def features(spark: SparkSession, events: list[tuple], labels: list[tuple]) -> DataFrame:
    return compute_features(small_lake.events(spark, events), features=FEATURES, dataset=DATASET,
                            labels={"merch_cb": small_lake.labels(spark, labels)})


@settings(max_examples=8, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories())
# At the cut's very instant: an event of the same customer, whose outcome is stamped hours
# before it (a skewed clock), and its label reported.
@example(history={"events": [(0, 0, 10, 5, None)], "cut": 10, "later": [(0, 0, 10, 3, 4)], "known": [],
                  "labels": [], "reported": [(1, 10)]})
def test_what_arrives_at_or_after_t_never_changes_a_feature_at_t(spark: SparkSession, history: dict) -> None:
    base = _events(spark, history["events"])
    labels = [(f"E{i}", hour(h)) for i, h in history["labels"]]
    outcomes = {i: (float(value), h) for i, h, value in history["known"]}
    revised = _events(spark, history["events"], outcomes=outcomes) \
        + _events(spark, history["later"], first=len(base))
    more_labels = labels + [(f"E{i}", hour(h)) for i, h in history["reported"]]
    cut = hour(history["cut"])

    def at_or_before_cut(df: DataFrame) -> DataFrame:
        return df.filter((F.col("event_time") <= F.lit(cut)) & F.col("txn_id").isin([e[0] for e in base]))

    before = at_or_before_cut(features(spark, base, labels))
    after = at_or_before_cut(features(spark, revised, more_labels))
    assert_df_equality(after, before, ignore_row_order=True, ignore_nullable=True)
