"""Encodings of categorical features, as stored with the model and applied at scoring.

Fitted on the training rows by lakeboost.train.prepare (`fit_frequency_encodings`, or
`category_codes` for xgboost's native categorical support); applied here, the same way to the
training, validation and test rows and to every row scored later.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

# A categorical column's encoding: category -> share of the training rows with it (frequency), or
# its code (native: 0 for the most frequent training category, 1 for the next...). Categories are
# strings (Spark's cast, at fit and at scoring alike), a null category is NULL_CATEGORY: the form
# stored with the model.
Encodings = dict[str, dict[str, float]]
FREQUENCY, NATIVE = "frequency", "native"
NULL_CATEGORY = "None"
# Above this many categories a lookup is built with createDataFrame (one small job to broadcast
# it) rather than as an inline SQL table (its text grows with the categories).
INLINE_CATEGORIES = 2000


def apply_encodings(df: DataFrame, encodings: Encodings, kind: str = FREQUENCY) -> DataFrame:
    """Replace each categorical column by its encoding: its training frequency (unseen categories:
    0, as rare as can be) or its native code (unseen categories: NULL, which xgboost treats as
    missing: a code it never saw would fall into an arbitrary branch of its splits).

    One broadcast join per column with its table as an inline VALUES table: a local relation,
    which Spark broadcasts without a job (a cached or createDataFrame table costs one job per
    column in every query that reads the encoded rows).
    """
    spark = df.sparkSession
    for column, table in encodings.items():
        value, frequency = f"__{column}_value", f"__{column}_frequency"
        lookup = _lookup_table(spark, table).toDF(value, frequency)
        df = (
            df.join(F.broadcast(lookup), F.col(column).cast("string").eqNullSafe(F.col(value)), how="left")
            .withColumn(column, F.col(frequency) if kind == NATIVE else F.coalesce(F.col(frequency), F.lit(0.0)))
            .drop(value, frequency)
        )
    return df


def _lookup_table(spark: SparkSession, table: dict[str, float]) -> DataFrame:
    """(value string, frequency double) rows of `table`."""
    rows = [(None if category == NULL_CATEGORY else category, float(share)) for category, share in table.items()]
    if not rows or len(rows) > INLINE_CATEGORIES:
        return spark.createDataFrame(rows, "value string, frequency double")
    # Categories as hex literals of their UTF-8 bytes (no quoting to get wrong), frequencies as
    # Python's round-trip repr: the VALUES table holds exactly the fitted figures.
    values = ", ".join(f"({'NULL' if category is None else f'X{category.encode().hex()!r}'}, {share!r}D)"
                       for category, share in rows)
    return spark.sql(f"SELECT CAST(v AS STRING) AS value, f AS frequency FROM VALUES {values} AS t(v, f)")
