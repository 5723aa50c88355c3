"""The likely cause named for a drifted feature, on hand-made drift results."""

from __future__ import annotations

import datetime as dt

from lakeboost.monitor.causes import History, likely_cause
from lakeboost.monitor.drift import DriftResult

DAY = dt.timedelta(days=1)
START = dt.datetime(2026, 1, 1)
HISTORY = History(first_event=START, warm_up_needed=60 * DAY, warm_up_trained=60 * DAY,
                  historical=frozenset({"count_30d"}))


def numeric(feature: str, ref: tuple[float, ...], cur: tuple[float, ...]) -> DriftResult:
    bins = tuple(f"b{i}" for i in range(len(ref) - 1)) + ("NULL",)
    return DriftResult(feature, "numeric", 1.0, 0.5, None, None, bins=bins, reference_shares=ref,
                       current_shares=cur, current_rows=100)


def test_unseen_categories_are_named_first() -> None:
    result = DriftResult("country", "categorical", 0.9, None, 10.0, 0.0, bins=("DE", "FR", "XX"),
                         reference_shares=(0.5, 0.5, 0.0), current_shares=(0.4, 0.4, 0.2), unseen_share=0.2)
    assert likely_cause(result, START + 90 * DAY, HISTORY).startswith(
        "category never seen in training: 'XX' in 20% of the window's rows")


def test_a_rising_null_share_is_missing_upstream_data() -> None:
    result = numeric("amount", (0.5, 0.45, 0.05), (0.2, 0.2, 0.6))
    assert likely_cause(result, START + 90 * DAY, HISTORY).startswith(
        "missing upstream data: NULL in 60% of the window's rows against 5% in training")


def test_warm_up_of_the_window_or_of_the_training_set() -> None:
    result = numeric("count_30d", (0.5, 0.5, 0.0), (0.1, 0.9, 0.0))
    assert likely_cause(result, START + 10 * DAY, HISTORY).startswith(
        "warm-up: the window starts 10d after the first event (2026-01-01) and the windows need 60d")
    untrained = History(START, 60 * DAY, dt.timedelta(0), frozenset({"count_30d"}))
    assert likely_cause(result, START + 90 * DAY, untrained).startswith(
        "warm-up in training: the model learnt from examples whose windows were still filling (warm_up 0h < 60d")
    # The event's own attribute is not windowed: its drift is a move of the values.
    own = numeric("amount", (0.5, 0.5, 0.0), (0.1, 0.9, 0.0))
    assert likely_cause(own, START + 10 * DAY, untrained).startswith("the values moved higher than in training: "
                                                                     "90% of rows now in b1 (50% in training)")


def test_otherwise_where_the_values_went() -> None:
    lower = numeric("amount", (0.2, 0.3, 0.5, 0.0), (0.7, 0.2, 0.1, 0.0))
    assert likely_cause(lower, START + 90 * DAY, HISTORY).startswith(
        "the values moved lower than in training: 70% of rows now in b0 (20% in training)")
    mix = DriftResult("channel", "categorical", 0.5, None, 5.0, 0.01, bins=("atm", "pos"),
                      reference_shares=(0.5, 0.5), current_shares=(0.2, 0.8))
    assert likely_cause(mix, START + 90 * DAY, HISTORY) == \
        "the mix of categories changed: 'pos' 50% in training, 80% now"
