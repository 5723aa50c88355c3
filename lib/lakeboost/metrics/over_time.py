"""Predictions against actuals over time: the series a predictions-vs-actual plot draws."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeboost.metrics.base import LABEL
from lakeboost.spark.rows import first_row


def over_time(predictions: DataFrame, *, time: str, label: str = LABEL, prediction: str = "prediction",
              points: int = 500) -> list[tuple[float, float, float, int]]:
    """(bucket start in epoch seconds, mean actual, mean predicted, rows) over at most `points`
    equal time buckets: the series a predictions-vs-actual plot draws (two small jobs)."""
    seconds = F.col(time).cast("long")
    low, high = first_row(predictions.agg(F.min(seconds), F.max(seconds)))
    if low is None:
        return []
    width = max(1, -(-(high - low + 1) // points))  # ceil: at most `points` buckets
    rows = (
        predictions.groupBy(F.floor((seconds - F.lit(low)) / F.lit(width)).alias("b"))
        .agg(F.avg(F.col(label).cast("double")).alias("actual"),
             F.avg(F.col(prediction).cast("double")).alias("predicted"), F.count(F.lit(1)).alias("n"))
        .orderBy("b").collect()  # at most `points` rows
    )
    return [(float(low + r["b"] * width), float(r["actual"]), float(r["predicted"]), int(r["n"])) for r in rows]
