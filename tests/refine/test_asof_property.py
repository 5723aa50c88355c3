"""The as-of join against pandas.merge_asof on random small time lines.

Ties (left rows at a right row's instant, several left rows at one instant), NULL keys (they
match each other, as merge_asof's `by` does), NULL times (merge_asof refuses them: a left row
without a time matches nothing, a right row without one is valid at no time), `strict`
(allow_exact_matches=False) and `max_age` (tolerance), keyed and keyless. A right time line
has one row per (key, instant): which of two rows at one instant is "latest" is undefined.
"""

from __future__ import annotations

import functools

import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lakeboost.refine.asof import asof_join
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

KEYS = st.sampled_from(["a", "b", None])
TIMES = st.one_of(st.none(), st.integers(0, 12))
T0 = 1_767_225_600  # instants are T0 + 600 s * n: ties are frequent


def oracle(left: pd.DataFrame, right: pd.DataFrame, *, keyed: bool, strict: bool,
           max_age: int | None) -> dict[int, tuple]:
    """id -> (v, right time) by pandas.merge_asof, NULL times handled as documented."""
    timed_left = left[left["t"].notna()].astype({"t": "int64"}).sort_values("t", kind="stable")
    timed_right = right[right["rt"].notna()].astype({"rt": "int64"}).sort_values("rt", kind="stable")
    expected = {int(i): (None, None) for i in left["id"]}
    if timed_left.empty or timed_right.empty:
        return expected
    merged = pd.merge_asof(timed_left, timed_right, left_on="t", right_on="rt", by="k" if keyed else None,
                           allow_exact_matches=not strict, tolerance=max_age, direction="backward")
    for row in merged.itertuples():
        matched = not pd.isna(row.rt)
        expected[int(row.id)] = (float(row.v) if matched else None, int(row.rt) if matched else None)
    return expected


@st.composite
def time_lines(draw: st.DrawFn) -> tuple[list[tuple], list[tuple]]:
    left = draw(st.lists(st.tuples(KEYS, TIMES), min_size=1, max_size=12))
    right_keys = draw(st.lists(st.tuples(KEYS, TIMES), max_size=10))
    # One right row per (key, instant); any number without a time.
    unique = list(dict.fromkeys(r for r in right_keys if r[1] is not None)) + [r for r in right_keys if r[1] is None]
    right = [(k, t, float(i)) for i, (k, t) in enumerate(unique)]
    return [(i, k, t) for i, (k, t) in enumerate(left)], right


def _spark_and_pandas(spark: SparkSession, left_rows: list[tuple], right_rows: list[tuple]):
    seconds = [(i, k, None if t is None else T0 + 600 * t) for i, k, t in left_rows]
    right_seconds = [(k, None if t is None else T0 + 600 * t, v) for k, t, v in right_rows]
    left = spark.createDataFrame(seconds, "id int, k string, t long").withColumn("t", F.timestamp_seconds("t"))
    right = spark.createDataFrame(right_seconds, "k string, rt long, v double") \
        .withColumn("rt", F.timestamp_seconds("rt"))
    return left, right, pd.DataFrame(seconds, columns=["id", "k", "t"]), \
        pd.DataFrame(right_seconds, columns=["k", "rt", "v"])


@settings(max_examples=10, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=time_lines(), max_age=st.sampled_from([None, 0, 600, 1800]))
# A right row without a time, and left rows before every timed right row (one at its instant).
@example(lines=([(0, "a", 1), (1, None, None), (2, "a", 4)], [("a", None, 0.0), ("a", 4, 1.0)]), max_age=None)
def test_asof_join_matches_pandas_merge_asof(spark: SparkSession, lines: tuple[list[tuple], list[tuple]],
                                             max_age: int | None) -> None:
    left_rows, right_rows = lines
    # One time line, keys ignored: one right row per instant.
    keyless_rows = list({t: (k, t, v) for k, t, v in right_rows if t is not None}.values()) \
        + [r for r in right_rows if r[1] is None]
    variants, expected = [], {}
    for keyed in (True, False):
        left, right, left_pd, right_pd = _spark_and_pandas(spark, left_rows, right_rows if keyed else keyless_rows)
        for strict in (True, False):
            joined = asof_join(left, right, on=["k"] if keyed else [], left_time="t", right_time="rt",
                               right_columns=["v"], strict=strict, max_age_seconds=max_age, prefix="r_")
            variants.append(joined.select(F.lit(f"{keyed}/{strict}").alias("variant"), "id", "r_v", "r_asof_time"))
            for i, match in oracle(left_pd, right_pd, keyed=keyed, strict=strict, max_age=max_age).items():
                expected[(f"{keyed}/{strict}", i)] = match

    rows = functools.reduce(DataFrame.unionByName, variants).collect()  # one job for the four variants

    got = {(r.variant, r.id): (r.r_v, None if r.r_asof_time is None else int(r.r_asof_time.timestamp()))
           for r in rows}
    assert len(rows) == 4 * len(left_rows)  # every left row exactly once
    assert got == expected
