"""The content hash of a row (`_row_hash`): what the catalog's MERGEs compare (TableCatalog.upsert:
an equal hash means nothing to update) and bronze's JDBC inserts key on.

One definition for every layer (ingest, refine, scoring, monitoring): a value stored in a table
is compared with the same function's output on the next run, so two copies could never differ.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

ROW_HASH = "_row_hash"


def with_content_hash(df: DataFrame, *, columns: list[str]) -> DataFrame:
    """`_row_hash`: SHA-256 (hex) of the JSON of `columns`, in this order (to_json leaves NULL
    fields out); names with dots or spaces are quoted. Equal hash means equal content."""
    return df.withColumn(ROW_HASH, F.sha2(F.to_json(F.struct(*[F.col(f"`{c}`") for c in columns])), 256))
