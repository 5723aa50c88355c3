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

from lakeboost.monitor.drift import Comparison, DriftResult, Reference, as_reference, drift_by, psi


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
    gives each feature the bar its data supports. One aggregation; pairs in Python.
    """
    return reference_noises(reference, numeric, categorical, time_column=time_column, sizes=[rows],
                            quantile=quantile, min_values=min_values)[rows]


def reference_noises(reference: DataFrame | Reference, numeric: Sequence[str], categorical: Sequence[str], *,
                     time_column: str, sizes: Sequence[int], quantile: float, min_values: int = 1
                     ) -> dict[int, dict[str, Noise]]:
    """`reference_noise` for each span size in `sizes` (rows): the spans of every size binned in
    one aggregation (each reference row once per size), both kinds of feature in it. Kept with
    the `Reference`: a later table of the run asking for a size already measured costs nothing."""
    reference = as_reference(reference)
    settings = (tuple(numeric), tuple(categorical), time_column, quantile, min_values)
    wanted = sorted(set(sizes))
    missing = [n for n in wanted if not reference.known(("noise", n, settings))]
    if missing:
        for n, noise in _noises(reference, numeric, categorical, time_column, missing, quantile, min_values).items():
            reference.memo(("noise", n, settings), lambda noise=noise: noise)  # type: ignore[misc]
    return {n: reference.memo(("noise", n, settings), dict) for n in wanted}


def _noises(reference: Reference, numeric: Sequence[str], categorical: Sequence[str], time_column: str,
            sizes: Sequence[int], quantile: float, min_values: int) -> dict[int, dict[str, Noise]]:
    def time_range() -> tuple[int, object, object]:
        row = reference.df.agg(F.count(F.lit(1)).alias("n"), F.min(F.col(time_column).cast("long")).alias("lo"),
                               F.max(F.col(time_column).cast("long")).alias("hi")).first()
        assert row is not None
        return int(row["n"]), row["lo"], row["hi"]

    n, lo, hi = reference.memo(("time_range", time_column), time_range)
    out: dict[int, dict[str, Noise]] = {rows: {} for rows in sizes}
    cut = [rows for rows in sizes if not (n < 2 * rows or lo is None or hi <= lo)]  # type: ignore[operator]
    if not cut:
        return out
    # Whole spans only (n // rows of them, over the full time range): a ragged last span would
    # hold part of a day and differ by its hours alone (an hour-of-day feature, say).
    seconds = F.col(time_column).cast("long") - F.lit(lo)
    spans = reference.df.withColumn(SPAN, F.explode(F.array(*[
        F.struct(F.lit(rows).alias("rows"),
                 F.floor(seconds / F.lit(max((hi - lo + 1) / (n // rows), 1.0))).alias("span"))  # type: ignore[operator]
        for rows in cut])))
    found: dict[int, dict[str, list[DriftResult]]] = {rows: {} for rows in cut}
    [results] = drift_by(spans, [Comparison(reference, numeric, categorical, min_values)], by=SPAN)
    for group, result in results:
        rows = group["rows"]  # type: ignore[index]
        if result.current_rows >= rows / 2:  # uneven traffic can still leave a thin span
            found[rows].setdefault(result.feature, []).append(result)
    for rows, features in found.items():
        out[rows] = _bars(features, quantile)
    return out


def _bars(found: dict[str, list[DriftResult]], quantile: float) -> dict[str, Noise]:
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
