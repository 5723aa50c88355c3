"""The bar each feature's data supports: how far spans of the reference itself, as large as a
scoring window, drift from one another (monitor.measure raises a feature's PSI and KS
thresholds to it)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeboost.monitor.drift import (
    DriftResult,
    Reference,
    as_reference,
    categorical_drift_by,
    numeric_drift_by,
    psi,
)


@dataclass(frozen=True)
class Noise:
    """How far spans of the reference itself, as large as a scoring window, drift from the whole."""

    psi: float
    ks: float | None
    spans: int
    null_share: float = 0.0  # how far the spans' NULL shares differ (absolute)


def reference_noise(reference: DataFrame | Reference, numeric: Sequence[str], categorical: Sequence[str], *,
                    time_column: str, rows: int, quantile: float, min_values: int = 1) -> dict[str, Noise]:
    """Feature -> the PSI and KS between two spans of `rows` reference rows (`quantile` of all pairs).

    PSI's usual bar (0.2) assumes independent rows. A feature shared by many rows (a merchant's
    7-day count, when a few dozen merchants carry all the traffic) has far fewer independent
    values than rows, and its window-to-window PSI is large with nothing drifting: the training
    data's own weeks differ that much, and the model learnt across those differences. Cutting
    the reference into spans like the window and comparing every span with every other (the
    first with the last too: slowly wandering values, like a 30-day rate, differ most far apart)
    gives each feature the bar its data supports. One aggregation per kind; pairs in Python.
    """
    reference = as_reference(reference)
    stats = reference.df.agg(F.count(F.lit(1)).alias("n"), F.min(F.col(time_column).cast("long")).alias("lo"),
                          F.max(F.col(time_column).cast("long")).alias("hi")).first()
    assert stats is not None
    n, lo, hi = int(stats["n"]), stats["lo"], stats["hi"]
    if n < 2 * rows or lo is None or hi <= lo:
        return {}
    # Whole spans only (n // rows of them, over the full time range): a ragged last span would
    # hold part of a day and differ by its hours alone (an hour-of-day feature, say).
    span_seconds = max((hi - lo + 1) / (n // rows), 1.0)
    spans = reference.df.withColumn(SPAN, F.floor((F.col(time_column).cast("long") - F.lit(lo)) / F.lit(span_seconds)))
    found: dict[str, list[DriftResult]] = {}
    for _, result in [*numeric_drift_by(reference, spans, numeric, by=SPAN, min_values=min_values),
                      *categorical_drift_by(reference, spans, categorical, by=SPAN)]:
        if result.current_rows >= rows / 2:  # uneven traffic can still leave a thin span
            found.setdefault(result.feature, []).append(result)
    noise = {}
    for feature, results in found.items():
        pairs = list(itertools.combinations(results, 2))
        if not pairs:
            continue
        psis = [psi(a.current_shares, b.current_shares) for a, b in pairs]
        kss = [max(abs(x - y) for x, y in zip(a.ks_cumulative, b.ks_cumulative, strict=True))
               for a, b in pairs if a.ks_cumulative and b.ks_cumulative]
        nulls = [abs(a.null_shares[1] - b.null_shares[1]) for a, b in pairs]
        noise[feature] = Noise(_quantile(psis, quantile), _quantile(kss, quantile) if kss else None, len(results),
                               _quantile(nulls, quantile))
    return noise


SPAN = "__reference_span"


def _quantile(values: Sequence[float], q: float) -> float:
    """The value at quantile q (the nearest rank at or above it)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]
