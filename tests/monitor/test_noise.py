"""The noise bar on seeded data: a feature shared by many rows gets a bar its own training spans
reach, a real shift still clears it, and independent rows keep it near zero."""

from __future__ import annotations

from lakeboost.monitor.drift import numeric_drift
from lakeboost.monitor.noise import reference_noise
from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def _clustered(spark: SparkSession, first_day: int, days: int, scale: float = 1.0):
    """300 events a day over 25 merchants; a merchant's feature value is its own level plus a
    wobble drawn anew each week, so a day's 300 rows hold only 25 independent values."""
    rows = spark.range(first_day * 300, (first_day + days) * 300)
    week = (F.col("id") / 300 / 7).cast("int")
    merchant = F.col("id") % 25
    level = (F.abs(F.hash(merchant)) % 1000).cast("double")
    wobble = (F.abs(F.hash(merchant, week)) % 300).cast("double")
    return rows.select(F.timestamp_seconds((F.col("id") / 300 * 86400).cast("long")).alias("t"),
                       ((level + wobble) * scale).alias("x"), merchant.cast("string").alias("m"))


def test_reference_noise_lifts_the_bar_for_features_shared_by_many_rows(spark: SparkSession) -> None:
    reference = _clustered(spark, 0, 28)
    next_day = _clustered(spark, 29, 1)
    shifted = _clustered(spark, 29, 1, scale=2.5)

    noise = reference_noise(reference, ["x"], [], time_column="t", rows=300, quantile=0.95)
    same = numeric_drift(reference, next_day, ["x"])[0]
    moved = numeric_drift(reference, shifted, ["x"])[0]

    # Nothing changed, yet a day's 25 merchant values read as drift against the 0.2 bar; the
    # reference's own days differ as much, and the bar rises with them.
    assert same.psi > 0.2
    assert noise["x"].spans == 28 and noise["x"].psi >= same.psi
    # A real shift (every value x 2.5) still clears the raised bar.
    assert moved.psi > noise["x"].psi
    # Independent rows: the spans agree with the whole, and the bar stays near zero.
    independent = spark.range(28 * 300).select(F.timestamp_seconds((F.col("id") / 300 * 86400).cast("long")).alias("t"),
                                               F.rand(seed=3).alias("x"))
    assert reference_noise(independent, ["x"], [], time_column="t", rows=300, quantile=0.95)["x"].psi < 0.1
