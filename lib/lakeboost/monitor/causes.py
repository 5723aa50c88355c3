"""The likely cause of a feature's drift, in words an on-call engineer can act on.

Read off the drift result itself (its bins, NULL shares and unseen categories) and two facts
about the history: when the feature table's first event was, and how long the windows need to
fill. Checked in order; the first that fits is named:
1. categories the training data never had (a new code upstream, a renamed value);
2. a NULL share that moved (a source or join that stopped, or started, delivering);
3. warm-up: the window lies within the warm-up of the history, or the model was trained on
   examples whose windows were still filling;
4. otherwise the values themselves moved (behaviour, or an upstream computation, changed):
   which way, and where the largest share went.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from lakeboost.monitor.drift import NULL_BIN, DriftResult

UNSEEN_SHARE = 0.01  # of the window's rows in categories training never had
NULL_SHIFT = 0.10  # absolute change of the NULL share
ROWS_MISSING = ("missing upstream data: the window has far fewer rows than training's windows of its span "
                "(a source or feed stopped or was cut); check the ingest runs and the source before retraining")


@dataclass(frozen=True)
class History:
    """What the monitor knows about the feature history behind a model."""

    first_event: dt.datetime | None
    warm_up_needed: dt.timedelta  # what the feature set's windows need to fill
    warm_up_trained: dt.timedelta  # what the training set left out
    historical: frozenset[str]  # features computed over earlier events (windows, rates, ...)


def likely_cause(result: DriftResult, window_start: dt.datetime, history: History) -> str:
    ref_null, cur_null = result.null_shares
    if result.kind == "categorical" and result.unseen_share >= UNSEEN_SHARE:
        unseen = [b for b, r, c in zip(result.bins, result.reference_shares, result.current_shares, strict=True)
                  if r == 0 and c > 0]
        return (f"category never seen in training: {', '.join(repr(u) for u in unseen[:3])} in "
                f"{result.unseen_share:.0%} of the window's rows (the model treats them as unknown); check the "
                "source's codes, or retrain once they are real")
    if cur_null - ref_null >= NULL_SHIFT:
        return missing_upstream(result)
    if ref_null - cur_null >= NULL_SHIFT:
        return (f"values where training had none: NULL in {cur_null:.0%} of rows against {ref_null:.0%} in "
                "training; a source or default changed")
    if result.feature in history.historical:
        if history.first_event is not None and window_start < history.first_event + history.warm_up_needed:
            return (f"warm-up: the window starts {span(window_start - history.first_event)} after the first "
                    f"event ({history.first_event:%Y-%m-%d}) and the windows need {span(history.warm_up_needed)} "
                    "to fill; expected to settle by itself")
        if history.warm_up_trained < history.warm_up_needed:
            return (f"warm-up in training: the model learnt from examples whose windows were still filling "
                    f"(warm_up {span(history.warm_up_trained)} < {span(history.warm_up_needed)} needed); rebuild "
                    "the training set with warm_up: auto and retrain")
    return value_shift(result)


def missing_upstream(result: DriftResult) -> str:
    ref_null, cur_null = result.null_shares
    return (f"missing upstream data: NULL in {cur_null:.0%} of the window's rows against {ref_null:.0%} in "
            f"training; check the source or join that feeds {result.feature}")


def value_shift(result: DriftResult) -> str:
    """Where the largest share went (numeric: also which way the values moved)."""
    gains = [(c - r, b, r, c) for b, r, c in zip(result.bins, result.reference_shares, result.current_shares,
                                                  strict=True)]
    _gain, where, ref, cur = max(gains)
    if result.kind == "categorical":
        return f"the mix of categories changed: {where!r} {ref:.0%} in training, {cur:.0%} now"
    values = [(i, r, c) for i, (b, r, c) in enumerate(zip(result.bins, result.reference_shares,
                                                           result.current_shares, strict=True)) if b != NULL_BIN]
    direction = "higher" if _mean_bin([(i, c) for i, _, c in values]) > _mean_bin([(i, r) for i, r, _ in values]) \
        else "lower"
    return (f"the values moved {direction} than in training: {cur:.0%} of rows now in {where} "
            f"({ref:.0%} in training)")


def _mean_bin(shares: list[tuple[int, float]]) -> float:
    return sum(i * s for i, s in shares) / (sum(s for _, s in shares) or 1)


def span(delta: dt.timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:.0f}d" if days >= 1 else f"{delta.total_seconds() / 3600:.0f}h"
