"""Data and prediction drift between a reference (training) sample and a scoring window.

Numeric features: PSI over deciles of the reference (binned on the *training* distribution,
so the bins mean the same thing every window) plus one bin for NULL, and the two-sample KS
statistic of the non-NULL values evaluated at the reference's percentile edges (binned: exact
at those 100 edges). Categorical features: PSI over categories (NULL one of them) and Pearson's
chi-square with its p-value. The reference is binned once (`Reference`: one quantile pass, one
aggregation) however many windows, tables and spans are compared with it; each current side
is one aggregation.

Why NULL is a bin: a sparse feature (a 1-hour stddev is NULL for 99% of events) compared on its
non-NULL values alone is a comparison of a handful of rows, which is noise that reads as drift;
and a feed going missing shows up as what it is, a rise of the NULL share, instead of nothing.
KS is left out (None) when either side has fewer than `min_values` non-NULL values.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from scipy import stats

from lakeboost.spark.sql_text import quoted_name, string_literal

EPSILON = 1e-4  # share given to an empty bin, so PSI stays finite
PSI_BINS = 10
KS_EDGES = 100


NULL_BIN = "NULL"
_T = TypeVar("_T")


@dataclass(frozen=True)
class DriftResult:
    feature: str
    kind: str  # numeric | categorical
    psi: float
    ks: float | None
    chi2: float | None
    p_value: float | None
    # The PSI bins, as the report draws them: labels and the two sides' shares (NULL last).
    bins: tuple[str, ...] = ()
    reference_shares: tuple[float, ...] = ()
    current_shares: tuple[float, ...] = ()
    current_rows: int = 0
    # Share of the current rows whose category the reference never had (categorical only).
    unseen_share: float = 0.0
    # The current side's cumulative shares at the KS edges (numeric; compares two windows).
    ks_cumulative: tuple[float, ...] = ()

    @property
    def null_shares(self) -> tuple[float, float]:
        """(reference, current) share of NULL."""
        if self.bins and self.bins[-1] == NULL_BIN:
            return self.reference_shares[-1], self.current_shares[-1]
        return 0.0, 0.0


def psi(reference: Sequence[float], current: Sequence[float]) -> float:
    """Population stability index of two share vectors over the same bins."""
    total = 0.0
    for r, c in zip(reference, current, strict=True):
        r, c = max(r, EPSILON), max(c, EPSILON)
        total += (c - r) * math.log(c / r)
    return total


class Reference:
    """The reference side, binned once however many times it is compared: per numeric column its
    decile and percentile edges and bin counts, per categorical column its category counts.
    Columns are prepared on first use, all missing ones in one pass."""

    def __init__(self, df: DataFrame) -> None:
        self.df = df
        self._edges: dict[str, tuple[list[float], list[float]]] = {}
        self._bins: dict[str, dict[int, int]] = {}
        self._categories: dict[str, dict[object, int]] = {}
        # What callers derive from the reference alone (its time span, its noise bars, its rows
        # per slice), kept for every table compared with it in a run: `memo(key, compute)`.
        self._memo: dict[object, object] = {}

    def memo(self, key: object, compute: Callable[[], _T]) -> _T:
        """`compute()` the first time `key` is asked for, the kept value after."""
        if key not in self._memo:
            self._memo[key] = compute()
        return cast(_T, self._memo[key])

    def known(self, key: object) -> bool:
        return key in self._memo

    def prepare(self, numeric: Sequence[str], categorical: Sequence[str]) -> None:
        """Bins the columns not binned yet: one quantile pass for the numeric ones, then one
        aggregation for both kinds' counts."""
        missing = [c for c in numeric if c not in self._edges]
        unseen = [c for c in categorical if c not in self._categories]
        if missing:
            # One quantile pass: the deciles are every tenth percentile.
            quantiles = self.df.approxQuantile(missing, [i / KS_EDGES for i in range(1, KS_EDGES)], 0.001)
            for column, q in zip(missing, quantiles, strict=True):
                step = KS_EDGES // PSI_BINS
                self._edges[column] = (sorted(set(q[step - 1::step])), sorted(set(q)))
        if not (missing or unseen):
            return
        both = _both_binnings({c: self._edges[c][0] for c in missing}, {c: self._edges[c][1] for c in missing})
        counts = _cell_counts(self.df, both, unseen).get(None, {})
        self._bins.update({k: counts.get(k, {}) for k in both})
        self._categories.update({c: counts.get(_category_key(c), {}) for c in unseen})

    def numeric(self, columns: Sequence[str]) -> tuple[dict[str, list[float]], dict[str, list[float]],
                                                        dict[str, dict[int, int]]]:
        """(decile edges, percentile edges, bin counts keyed `psi::c` / `ks::c`) of `columns`."""
        self.prepare(columns, [])
        return ({c: self._edges[c][0] for c in columns}, {c: self._edges[c][1] for c in columns},
                {f"{p}::{c}": self._bins.get(f"{p}::{c}", {}) for c in columns for p in ("psi", "ks")})

    def categorical(self, columns: Sequence[str]) -> dict[str, dict[object, int]]:
        self.prepare([], columns)
        return {c: self._categories[c] for c in columns}


def as_reference(reference: DataFrame | Reference) -> Reference:
    return reference if isinstance(reference, Reference) else Reference(reference)


def _bin_sql(column: str, edges: list[float]) -> str:
    """The bin of the column's value (as a double) as SQL: -1 for NULL, else how many of `edges`
    (ascending) are below it, so the first bin whose edge is >= the value.

    One constant array per feature: a CASE chain per edge outgrew Java's 64 KB method limit with
    ~90 features x 60 edges, and Spark fell back to interpreting the whole stage.
    """
    value = f"CAST({quoted_name(column)} AS DOUBLE)"
    # As text, so an infinite edge reads back ('inf'); Spark folds the casts once.
    array = ", ".join(f"CAST('{float(edge)!r}' AS DOUBLE)" for edge in edges)
    below = f"size(filter(array({array}), edge -> edge < {value}))" if edges else "0"
    return f"CASE WHEN {value} IS NULL THEN -1 ELSE {below} END"


def _exploded(df: DataFrame, cells: list[str], by: str | None) -> DataFrame:
    """Columns g (the group, NULL without `by`) and x (one of the SQL `cells` per row and cell).

    Spelt as one SQL expression: built from Python Columns it is several JVM calls per feature
    (each feature twice, for PSI and KS, in every aggregation: 4 s of the 20k demo's monitor step).
    """
    group = F.col(by) if by else F.lit(None)
    return df.select(group.alias("g"), F.expr(f"explode(array({', '.join(cells)}))").alias("x"))


def _bin_counts(df: DataFrame, edges: dict[str, tuple[str, list[float]]], by: str | None = None
                ) -> dict[object, dict[str, dict[int, int]]]:
    """Rows per (group, key, bin) in one aggregation, for `edges` keyed by name: (column, ascending
    edges); bin i counts values <= edges[i] (last: the rest), bin -1 NULL. Without `by` the single
    group is None.
    """
    return cast(dict[object, dict[str, dict[int, int]]], _cell_counts(df, edges, [], by))


def _category_key(column: str) -> str:
    return f"cat::{column}"


def _cell_counts(df: DataFrame, edges: dict[str, tuple[str, list[float]]], categorical: Sequence[str],
                 by: str | None = None) -> dict[object, dict[str, dict[Any, int]]]:
    """`_bin_counts` of `edges` and the category counts of `categorical` (keyed `cat::<column>`,
    NULL a category) in one aggregation: numeric and categorical features, and the score beside
    them, cost one Spark job per frame instead of one per kind."""
    derived = _coarser(edges)
    cells = [f"named_struct('f', {string_literal(key)}, 'b', {_bin_sql(column, cuts)}, 'v', CAST(NULL AS STRING))"
             for key, (column, cuts) in edges.items() if key not in derived]
    cells += [f"named_struct('f', {string_literal(_category_key(c))}, 'b', CAST(NULL AS INT), "
              f"'v', CAST({quoted_name(c)} AS STRING))" for c in categorical]
    if not cells:
        return {}
    keys = [*edges, *(_category_key(c) for c in categorical)]
    # groups x (features x bins + categories): small
    rows = _exploded(df, cells, by).groupBy("g", "x.f", "x.b", "x.v").count().collect()
    counts: dict[object, dict[str, dict[Any, int]]] = {}
    for row in rows:
        cell = row["v"] if row["b"] is None else int(row["b"])
        counts.setdefault(row["g"], {k: {} for k in keys})[row["f"]][cell] = int(row["count"])
    for key, (source, to_coarse) in derived.items():
        for group in counts.values():
            coarse = group[key]
            for fine_bin, n in group[source].items():
                coarse[to_coarse[fine_bin]] = coarse.get(to_coarse[fine_bin], 0) + n
    return counts


def _coarser(edges: dict[str, tuple[str, list[float]]]) -> dict[str, tuple[str, dict[int, int]]]:
    """Binnings whose edges are all edges of a finer binning of the same column (the PSI deciles
    are every tenth of the KS percentiles): key -> (the finer one's key, its bin -> this one's
    bin). Counted on the driver from the finer one's counts, the same counts as binning the rows
    again: a value in fine bin k lies in (fine[k-1], fine[k]], so the coarse edges below it are
    those at or below fine[k-1]. Each column is then binned once per row, not once per binning."""
    finest: dict[str, str] = {}
    for key, (column, cuts) in edges.items():
        if column not in finest or len(cuts) > len(edges[finest[column]][1]):
            finest[column] = key
    out = {}
    for key, (column, cuts) in edges.items():
        fine = sorted(edges[finest[column]][1])
        if key == finest[column] or len(set(cuts)) != len(cuts) or not set(cuts) <= set(fine):
            continue
        coarse = sorted(cuts)
        to_coarse = {-1: -1, 0: 0, **{k: bisect.bisect_right(coarse, fine[k - 1]) for k in range(1, len(fine) + 1)}}
        out[key] = (finest[column], to_coarse)
    return out


def _both_binnings(deciles: dict[str, list[float]], fine: dict[str, list[float]]
                   ) -> dict[str, tuple[str, list[float]]]:
    """Both binnings of every column for one aggregation (prefixing keeps the two apart)."""
    return {**{f"psi::{c}": (c, e) for c, e in deciles.items()}, **{f"ks::{c}": (c, e) for c, e in fine.items()}}


def _numeric_results(column: str, deciles: list[float], fine: list[float], ref: dict[str, dict[int, int]],
                     cur: dict[str, dict[int, int]], min_values: int) -> DriftResult:
    psi_ref, psi_cur = (_shares(c[f"psi::{column}"], len(deciles) + 1, with_null=True) for c in (ref, cur))
    ks_ref, ks_cur = (_shares(c[f"ks::{column}"], len(fine) + 1) for c in (ref, cur))
    values = [sum(v for k, v in c[f"ks::{column}"].items() if k >= 0) for c in (ref, cur)]
    ks = None
    if min(values) >= min_values:
        ks = max((abs(a - b) for a, b in zip(_cumulative(ks_ref), _cumulative(ks_cur), strict=True)), default=0.0)
    return DriftResult(column, "numeric", psi(psi_ref, psi_cur), ks, None, None, bins=_bin_labels(deciles),
                       reference_shares=tuple(psi_ref), current_shares=tuple(psi_cur),
                       current_rows=sum(cur[f"psi::{column}"].values()),
                       ks_cumulative=tuple(_cumulative(ks_cur)) if values[1] >= min_values else ())


def _bin_labels(edges: list[float]) -> tuple[str, ...]:
    if not edges:
        return ("all", NULL_BIN)
    inner = [f"({a:.4g}, {b:.4g}]" for a, b in zip(edges, edges[1:], strict=False)]
    return (f"<= {edges[0]:.4g}", *inner, f"> {edges[-1]:.4g}", NULL_BIN)


def numeric_drift(reference: DataFrame | Reference, current: DataFrame, columns: Sequence[str], *,
                  min_values: int = 1) -> list[DriftResult]:
    return [r for _, r in numeric_drift_by(reference, current, columns, min_values=min_values)]


def numeric_drift_by(reference: DataFrame | Reference, current: DataFrame, columns: Sequence[str],
                     by: str | None = None, *, min_values: int = 1) -> list[tuple[object, DriftResult]]:
    """Per group of `current` (by column `by`, e.g. the scoring window) against the whole reference.

    The reference's quantiles and bin counts are computed once (and kept by a `Reference`);
    `current` is read in one pass for all groups and features.
    """
    if not columns:
        return []
    deciles, fine, ref_counts = as_reference(reference).numeric(columns)
    cur_counts = _bin_counts(current, _both_binnings(deciles, fine), by)
    return [(group, _numeric_results(column, deciles[column], fine[column], ref_counts, counts, min_values))
            for group, counts in sorted(cur_counts.items(), key=lambda kv: str(kv[0])) for column in columns]


def numeric_drift_by_slice(reference: Reference, current: DataFrame, column: str, *, slice_by: Column, by: str,
                           min_values: int = 1) -> list[tuple[tuple[object, str], DriftResult]]:
    """Per (group of `by`, slice) of `current`, `column` against the reference rows of the same
    slice, both binned on the whole reference's edges (a bin means the same in every slice):
    two aggregations, whatever the number of slices. A slice the reference never had is left out."""
    return numeric_drift_by_slices(reference, current, column, slices=[slice_by], by=by, min_values=min_values)[0]


def numeric_drift_by_slices(reference: Reference, current: DataFrame, column: str, *, slices: Sequence[Column],
                            by: str, min_values: int = 1
                            ) -> tuple[list[tuple[tuple[object, str], DriftResult]], dict[tuple[object, str], int]]:
    """`numeric_drift_by_slice` for several slice columns at once (each row counted once per slice
    column: their values name the column, `country=DE`, so their groups never meet), and the rows
    of every (group, slice) of `current`, the reference's slices or not. Two aggregations however
    many slice columns; the reference's side is kept with it for the next table of the run."""
    deciles, fine, _ = reference.numeric([column])
    binnings = _both_binnings({column: deciles[column]}, {column: fine[column]})

    def per_slice() -> dict[object, dict[str, dict[int, int]]]:
        sliced = reference.df.select(F.explode(F.array(*slices)).alias("_slice"), column)
        return _bin_counts(sliced, binnings, "_slice")

    ref_counts = reference.memo(("slices", column, tuple(str(s) for s in slices)), per_slice)
    grouped = current.select(F.explode(F.array(*[F.struct(F.col(by).alias("w"), s.alias("s")) for s in slices]))
                             .alias("_group"), column)
    out, rows = [], {}
    for group, counts in sorted(_bin_counts(grouped, binnings, "_group").items(), key=lambda kv: str(kv[0])):
        window, part = group["w"], group["s"]  # type: ignore[index]
        rows[(window, part)] = sum(counts[f"psi::{column}"].values())  # NULL scores in bin -1: every row
        if part in ref_counts:
            out.append(((window, part), _numeric_results(column, deciles[column], fine[column], ref_counts[part],
                                                         counts, min_values)))
    return out, rows


def _shares(counts: dict[int, int], bins: int, *, with_null: bool = False) -> list[float]:
    """Shares of the value bins (bin -1, NULL, last when `with_null`, else left out)."""
    total = sum(v for k, v in counts.items() if with_null or k >= 0) or 1
    return [counts.get(i, 0) / total for i in range(bins)] + ([counts.get(-1, 0) / total] if with_null else [])


def _cumulative(shares: list[float]) -> list[float]:
    out, running = [], 0.0
    for share in shares:
        running += share
        out.append(running)
    return out


def categorical_drift(reference: DataFrame | Reference, current: DataFrame, columns: Sequence[str]
                      ) -> list[DriftResult]:
    return [r for _, r in categorical_drift_by(reference, current, columns)]


def categorical_drift_by(reference: DataFrame | Reference, current: DataFrame, columns: Sequence[str],
                         by: str | None = None) -> list[tuple[object, DriftResult]]:
    """PSI and chi-square per group of `current` against the reference; one aggregation per side."""
    if not columns:
        return []
    ref = as_reference(reference).categorical(columns)
    results = []
    for group, cur_all in sorted(_category_counts(current, columns, by).items(), key=lambda kv: str(kv[0])):
        for column in columns:
            results.append((group, _categorical_result(column, ref.get(column, {}), cur_all.get(column, {}))))
    return results


@dataclass(frozen=True)
class Comparison:
    """Columns of the current side compared with one reference: `numeric_drift_by`'s and
    `categorical_drift_by`'s arguments, for `drift_by`."""

    reference: Reference
    numeric: Sequence[str] = ()
    categorical: Sequence[str] = ()
    min_values: int = 1


def drift_by(current: DataFrame, comparisons: Sequence[Comparison], by: str | None = None
             ) -> list[list[tuple[object, DriftResult]]]:
    """Per comparison, what `numeric_drift_by` and then `categorical_drift_by` return for it, from
    one aggregation over `current` for all of them (the features against the training sample
    and the score against its scores: one Spark job, not three)."""
    edges: dict[str, tuple[str, list[float]]] = {}
    categorical: list[str] = []
    binned = []
    for i, c in enumerate(comparisons):
        c.reference.prepare(c.numeric, c.categorical)
        deciles, fine, ref_bins = c.reference.numeric(c.numeric)
        edges.update({f"{i}|{key}": spec for key, spec in _both_binnings(deciles, fine).items()})
        categorical += [col for col in c.categorical if col not in categorical]  # one count serves every reference
        binned.append((deciles, fine, ref_bins, c.reference.categorical(c.categorical)))
    counts = sorted(_cell_counts(current, edges, categorical, by).items(), key=lambda kv: str(kv[0]))
    out = []
    for i, (c, (deciles, fine, ref_bins, ref_categories)) in enumerate(zip(comparisons, binned, strict=True)):
        results = []
        if c.numeric:
            for group, cells in counts:
                mine = {f"{p}::{col}": cells[f"{i}|{p}::{col}"] for col in c.numeric for p in ("psi", "ks")}
                results += [(group, _numeric_results(col, deciles[col], fine[col], ref_bins, mine, c.min_values))
                            for col in c.numeric]
        if c.categorical:
            results += [(group, _categorical_result(col, ref_categories.get(col, {}), cells[_category_key(col)]))
                        for group, cells in counts for col in c.categorical]
        out.append(results)
    return out


def _category_counts(df: DataFrame, columns: Sequence[str], by: str | None = None
                     ) -> dict[object, dict[str, dict[object, int]]]:
    # categories are few: a handful per feature and group
    return {g: {c: counts[_category_key(c)] for c in columns if counts[_category_key(c)]}
            for g, counts in _cell_counts(df, {}, columns, by).items()}


def _categorical_result(column: str, ref: dict[object, int], cur: dict[object, int]) -> DriftResult:
    # NULL (None) sorts last, as in the numeric bins.
    categories = sorted(set(ref) | set(cur), key=lambda k: (k is None, str(k)))
    ref_total, cur_total = sum(ref.values()) or 1, sum(cur.values()) or 1
    ref_shares = [ref.get(k, 0) / ref_total for k in categories]
    cur_shares = [cur.get(k, 0) / cur_total for k in categories]
    expected = [max(s, EPSILON) * cur_total for s in ref_shares]
    chi2 = sum((cur.get(k, 0) - e) ** 2 / e for k, e in zip(categories, expected, strict=True))
    p_value = float(stats.chi2.sf(chi2, max(len(categories) - 1, 1)))
    unseen = sum(n for k, n in cur.items() if k not in ref) / cur_total
    return DriftResult(column, "categorical", psi(ref_shares, cur_shares), None, chi2, p_value,
                       bins=tuple(NULL_BIN if k is None else str(k) for k in categories),
                       reference_shares=tuple(ref_shares), current_shares=tuple(cur_shares),
                       current_rows=sum(cur.values()), unseen_share=unseen)
