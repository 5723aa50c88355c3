"""As-of joins: each left row gets the right row valid at its time (latest at or before it).

Built as a union and one window (`last(..., ignorenulls)`), not as a range join followed by a
ranking: the cost is one shuffle by key and linear in rows, however many versions a key has.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def asof_join(
    left: DataFrame,
    right: DataFrame,
    *,
    on: Sequence[str],
    left_time: str,
    right_time: str,
    right_columns: Sequence[str],
    strict: bool = False,
    max_age_seconds: int | None = None,
    prefix: str = "",
) -> DataFrame:
    """Left rows with `right_columns` (prefixed) from the latest right row at/before left_time.

    Args:
        strict: take right rows strictly before left_time (point-in-time features: a value
            observed at the label's own instant is its future).
        max_age_seconds: ignore right rows older than this (their columns become NULL).
    `on` may be empty: one time line for all left rows (a city-wide feed). NULL keys match
    each other (as pandas.merge_asof's `by` does); NULL times match nothing.

    Returns:
        Every left row exactly once, its columns unchanged, plus `<prefix><col>` and
        `<prefix>asof_time` (the right row's time).
    """
    payload = F.struct(*[F.col(c).alias(c) for c in right_columns], F.col(right_time).alias("__time"))
    left_cols = left.columns
    left_side = left.select(
        *[F.col(c) for c in left_cols], F.col(left_time).alias("__t"), F.lit(1).alias("__is_left"),
        F.lit(None).cast(payload_type(right, right_columns, right_time)).alias("__payload"),
    )
    # A right row without a time is valid at no time: it would sort before every left row and
    # match each that has no earlier right row. (A left row without a time matches nothing.)
    right_side = right.select(
        *[F.col(k).alias(k) if k in left_cols else F.col(k) for k in on],
        F.col(right_time).alias("__t"), F.lit(0).alias("__is_left"), payload.alias("__payload"),
    ).where(F.col("__t").isNotNull())
    right_side = right_side.select(
        *[F.col(c) if c in on else F.lit(None).cast(left.schema[c].dataType).alias(c) for c in left_cols],
        "__t", "__is_left", "__payload",
    )
    partition = list(on)
    if not on and max_age_seconds is not None:
        # One time line (a city's weather): no key to spread it over tasks, so time buckets of
        # at least max_age are the key. A right row also joins the next bucket, so a left row
        # sees every right row within max_age of it, and the work spreads over the buckets.
        bucket_seconds = max(max_age_seconds, 86_400)
        left_side = left_side.withColumn("__bucket", F.floor(F.col("__t").cast("long") / bucket_seconds))
        own = F.floor(F.col("__t").cast("long") / bucket_seconds)
        right_side = right_side.withColumn("__bucket", F.explode(F.array(own, own + 1)))
        partition = ["__bucket"]
    # Without a key or a max_age the time line is one partition: fine for a small feed; give
    # a max_age (which a feed that can have gaps wants anyway) to spread it.
    # At equal times a right row counts as "before" the left row unless strict.
    tie_order = F.col("__is_left").desc() if strict else F.col("__is_left").asc()
    window = (
        Window.partitionBy(*partition).orderBy(F.col("__t").asc(), tie_order)
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    matched = (
        left_side.unionByName(right_side)
        .withColumn("__match", F.last("__payload", ignorenulls=True).over(window))
        .filter(F.col("__is_left") == 1)
    )
    too_old = (
        F.lit(False) if max_age_seconds is None
        else (F.col("__t").cast("long") - F.col("__match.__time").cast("long")) > max_age_seconds
    )
    match = F.when(~too_old, F.col("__match"))
    return matched.select(
        *[F.col(c) for c in left_cols],
        *[match.getField(c).alias(f"{prefix}{c}") for c in right_columns],
        match.getField("__time").alias(f"{prefix}asof_time"),
    )


def payload_type(right: DataFrame, right_columns: Sequence[str], right_time: str) -> str:
    fields = [f"`{c}`: {right.schema[c].dataType.simpleString()}" for c in right_columns]
    fields.append(f"`__time`: {right.schema[right_time].dataType.simpleString()}")
    return f"struct<{', '.join(fields)}>"
