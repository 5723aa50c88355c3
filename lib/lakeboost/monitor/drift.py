"""Data and prediction drift between a reference (training) sample and a scoring window.

Numeric features: PSI over deciles of the reference (binned on the *training* distribution,
so the bins mean the same thing every window) and the two-sample KS statistic evaluated at the
reference's percentile edges (binned: exact at those 100 edges). Categorical features: PSI over
categories and Pearson's chi-square with its p-value. Three passes over the data at most: one
for the reference quantiles, one aggregation per side.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from scipy import stats

EPSILON = 1e-4  # share given to an empty bin, so PSI stays finite
PSI_BINS = 10
KS_EDGES = 100


@dataclass(frozen=True)
class DriftResult:
    feature: str
    kind: str  # numeric | categorical
    psi: float
    ks: float | None
    chi2: float | None
    p_value: float | None


def psi(reference: Sequence[float], current: Sequence[float]) -> float:
    """Population stability index of two share vectors over the same bins."""
    total = 0.0
    for r, c in zip(reference, current, strict=True):
        r, c = max(r, EPSILON), max(c, EPSILON)
        total += (c - r) * math.log(c / r)
    return total


def _edges(reference: DataFrame, columns: Sequence[str], count: int) -> dict[str, list[float]]:
    probabilities = [i / count for i in range(1, count)]
    quantiles = reference.approxQuantile(list(columns), probabilities, 0.001)
    return {c: sorted(set(q)) for c, q in zip(columns, quantiles, strict=True)}


def _edges_below(edges: list[float], value: Column) -> Column:
    return F.size(F.filter(F.array(*[F.lit(float(edge)) for edge in edges]), lambda edge: edge < value))


def _bin_counts(df: DataFrame, edges: dict[str, list[float]], by: str | None = None
                ) -> dict[object, dict[str, dict[int, int]]]:
    """Rows per (group, feature, bin) in one aggregation; bin i counts values <= edges[i] (last: the rest).

    Without `by` the single group is None.
    """
    bins = []
    for column, cuts in edges.items():
        value = F.col(f"`{column}`").cast("double")
        # The first bin whose edge is >= value = the number of (ascending) edges below it. One
        # constant array per feature: a CASE chain per edge outgrew Java's 64 KB method limit
        # with ~90 features x 60 edges, and Spark fell back to interpreting the whole stage.
        index = _edges_below(cuts, value)
        bins.append(F.struct(F.lit(column).alias("f"), F.when(value.isNull(), -1).otherwise(index).alias("b")))
    group = F.col(by) if by else F.lit(None)
    rows = (df.select(group.alias("g"), F.explode(F.array(*bins)).alias("x"))
            .groupBy("g", "x.f", "x.b").count().collect())  # groups x features x bins: small
    counts: dict[object, dict[str, dict[int, int]]] = {}
    for row in rows:
        counts.setdefault(row["g"], {c: {} for c in edges})[row["f"]][int(row["b"])] = int(row["count"])
    return counts


def _numeric_results(column: str, deciles: list[float], fine: list[float], ref: dict[str, dict[int, int]],
                     cur: dict[str, dict[int, int]]) -> DriftResult:
    psi_ref, psi_cur = (_shares(c[f"psi::{column}"], len(deciles) + 1) for c in (ref, cur))
    ks_ref, ks_cur = (_shares(c[f"ks::{column}"], len(fine) + 1) for c in (ref, cur))
    ks = max((abs(a - b) for a, b in zip(_cumulative(ks_ref), _cumulative(ks_cur), strict=True)), default=0.0)
    return DriftResult(column, "numeric", psi(psi_ref, psi_cur), ks, None, None)


def numeric_drift(reference: DataFrame, current: DataFrame, columns: Sequence[str]) -> list[DriftResult]:
    return [r for _, r in numeric_drift_by(reference, current, columns)]


def numeric_drift_by(reference: DataFrame, current: DataFrame, columns: Sequence[str], by: str | None = None
                     ) -> list[tuple[object, DriftResult]]:
    """Per group of `current` (by column `by`, e.g. the scoring window) against the whole reference.

    The reference's quantiles and bin counts are computed once; `current` is read in one pass
    for all groups and features.
    """
    if not columns:
        return []
    deciles = _edges(reference, columns, PSI_BINS)
    fine = _edges(reference, columns, KS_EDGES)
    # One aggregation per side covers both binnings (prefixing keeps the two apart).
    both = {**{f"psi::{c}": e for c, e in deciles.items()}, **{f"ks::{c}": e for c, e in fine.items()}}
    ref_counts = _bin_counts(_aliased(reference, columns), both).get(None, {k: {} for k in both})
    cur_counts = _bin_counts(_aliased(current, columns, by), both, by)
    return [(group, _numeric_results(column, deciles[column], fine[column], ref_counts, counts))
            for group, counts in sorted(cur_counts.items(), key=lambda kv: str(kv[0])) for column in columns]


def _aliased(df: DataFrame, columns: Sequence[str], by: str | None = None) -> DataFrame:
    return df.select(*([by] if by else []), *[F.col(c).alias(f"{p}::{c}") for c in columns for p in ("psi", "ks")])


def _shares(counts: dict[int, int], bins: int) -> list[float]:
    total = sum(v for k, v in counts.items() if k >= 0) or 1
    return [counts.get(i, 0) / total for i in range(bins)]


def _cumulative(shares: list[float]) -> list[float]:
    out, running = [], 0.0
    for share in shares:
        running += share
        out.append(running)
    return out


def categorical_drift(reference: DataFrame, current: DataFrame, columns: Sequence[str]) -> list[DriftResult]:
    return [r for _, r in categorical_drift_by(reference, current, columns)]


def categorical_drift_by(reference: DataFrame, current: DataFrame, columns: Sequence[str], by: str | None = None
                         ) -> list[tuple[object, DriftResult]]:
    """PSI and chi-square per group of `current` against the reference; one aggregation per side."""
    if not columns:
        return []
    ref = _category_counts(reference, columns).get(None, {})
    results = []
    for group, cur_all in sorted(_category_counts(current, columns, by).items(), key=lambda kv: str(kv[0])):
        for column in columns:
            results.append((group, _categorical_result(column, ref.get(column, {}), cur_all.get(column, {}))))
    return results


def _category_counts(df: DataFrame, columns: Sequence[str], by: str | None = None
                     ) -> dict[object, dict[str, dict[object, int]]]:
    values = F.array(*[F.struct(F.lit(c).alias("f"), F.col(f"`{c}`").cast("string").alias("v")) for c in columns])
    group = F.col(by) if by else F.lit(None)
    rows = df.select(group.alias("g"), F.explode(values).alias("x")).groupBy("g", "x.f", "x.v").count().collect()
    counts: dict[object, dict[str, dict[object, int]]] = {}
    for row in rows:  # categories are few: a handful per feature and group
        counts.setdefault(row["g"], {}).setdefault(row["f"], {})[row["v"]] = int(row["count"])
    return counts


def _categorical_result(column: str, ref: dict[object, int], cur: dict[object, int]) -> DriftResult:
    categories = sorted(set(ref) | set(cur), key=str)
    ref_total, cur_total = sum(ref.values()) or 1, sum(cur.values()) or 1
    ref_shares = [ref.get(k, 0) / ref_total for k in categories]
    cur_shares = [cur.get(k, 0) / cur_total for k in categories]
    expected = [max(s, EPSILON) * cur_total for s in ref_shares]
    chi2 = sum((cur.get(k, 0) - e) ** 2 / e for k, e in zip(categories, expected, strict=True))
    p_value = float(stats.chi2.sf(chi2, max(len(categories) - 1, 1)))
    return DriftResult(column, "categorical", psi(ref_shares, cur_shares), None, chi2, p_value)
