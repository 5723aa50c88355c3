"""Names and strings spelt into SQL text read back as themselves."""

from __future__ import annotations

from lakeboost.spark.sql_text import quoted_name, string_literal
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

AWKWARD = ["plain", "it's", "two words", "back\\slash", "tick`tock", "a.b", "semi;colon", "'; DROP"]


def test_names_and_strings_read_back_unchanged(spark: SparkSession) -> None:
    df = spark.range(1).select(*[F.lit(i).alias(name) for i, name in enumerate(AWKWARD)])

    row = df.select(*[F.expr(quoted_name(name)) for name in AWKWARD],
                    *[F.expr(string_literal(name)).alias(f"s{i}") for i, name in enumerate(AWKWARD)]).first()

    assert row is not None
    assert list(row)[:len(AWKWARD)] == list(range(len(AWKWARD)))
    assert list(row)[len(AWKWARD):] == AWKWARD
