"""Typed access to single-row results (global aggregates, a table's latest history entry)."""

from __future__ import annotations

from pyspark.sql import DataFrame, Row


def first_row(df: DataFrame) -> Row:
    """`df.first()` for a DataFrame that always has a row, e.g. `df.agg(...)` without groupBy.

    `DataFrame.first()` is typed `Row | None`; this states the invariant once instead of at
    every call site.
    """
    row = df.first()
    assert row is not None, "expected a DataFrame with at least one row"
    return row
