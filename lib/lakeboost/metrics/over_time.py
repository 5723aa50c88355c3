"""Predictions against actuals over time: the series a predictions-vs-actual plot draws."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeboost.metrics.base import LABEL
from lakeboost.spark.rows import first_row

# Bucket widths in seconds, finest first: a second, a minute, 5 and 15 minutes, an hour, 3 and 6
# hours, a day, a week. Buckets start at multiples of their width (since the epoch), so hourly
# buckets start on the hour and a day's peak stays in its hour.
WIDTHS = (1, 60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400)


def over_time(predictions: DataFrame, *, time: str, label: str = LABEL, prediction: str = "prediction",
              points: int = 3000) -> list[tuple[float, float, float, int]]:
    """(bucket start in epoch seconds, mean actual, mean predicted, rows) per time bucket: the
    series a predictions-vs-actual plot draws (two small jobs). The bucket is the finest width of
    `WIDTHS` that keeps at most `points` buckets: the data's own resolution when it is small
    enough (an hourly series of a few thousand hours: every hour), else whole units of time."""
    seconds = F.col(time).cast("long")
    low, high = first_row(predictions.agg(F.min(seconds), F.max(seconds)))
    if low is None:
        return []
    span = high - low + 1
    width = next((w for w in WIDTHS if span / w <= points), -(-span // points))
    rows = (
        predictions.groupBy((F.floor(seconds / F.lit(width)) * F.lit(width)).alias("b"))
        .agg(F.avg(F.col(label).cast("double")).alias("actual"),
             F.avg(F.col(prediction).cast("double")).alias("predicted"), F.count(F.lit(1)).alias("n"))
        .orderBy("b").collect()  # at most `points` (+1) rows
    )
    return [(float(r["b"]), float(r["actual"]), float(r["predicted"]), int(r["n"])) for r in rows]
