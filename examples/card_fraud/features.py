"""Custom features of the demo feature set (registered by name)."""

from __future__ import annotations

from lakeboost.plugins import feature
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


@feature("local_hour")
def local_hour(df: DataFrame, *, time: str) -> DataFrame:
    """Hour of day at the customer's home (UTC hour; the demo's home offsets are small)."""
    return df.withColumn("hour_of_day", F.hour(time)).withColumn("is_night", (F.hour(time) < 6).cast("int"))


@feature("is_foreign")
def is_foreign(df: DataFrame, *, country: str, home_country: str) -> DataFrame:
    """Transaction country differs from the customer's home country valid at the time."""
    return df.withColumn("is_foreign", (F.col(country) != F.col(home_country)).cast("int"))
