"""Pure transformations from raw source rows to bronze rows and quarantine rows.

Text sources are read with every declared column as STRING plus Spark's corrupt-record
column, then typed here with `try_cast`: that way each rejected row carries a reason naming
the column and the value, which Spark's own parser cannot say.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

CORRUPT = "_corrupt_record"
REASON = "_rejection_reason"
METADATA_COLUMNS = ("_source", "_source_file", "_ingested_at", "_batch_id")
QUARANTINE_COLUMNS = (
    "source", "source_file", "raw_record", "reason", "ingested_at", "batch_id",
)


def string_read_schema(declared: Mapping[str, str]) -> StructType:
    """The schema text files are read with: declared columns as strings + the corrupt column."""
    ddl = ", ".join(f"`{c}` STRING" for c in declared) + f", `{CORRUPT}` STRING"
    schema = StructType.fromDDL(ddl)  # typed DataType; a column list always parses to a StructType
    assert isinstance(schema, StructType)
    return schema


def _field_count_reason(expected: int, delimiter: str) -> Column:
    found = F.size(F.split(F.col(CORRUPT), _regex_escape(delimiter), -1))
    return F.when(
        F.col(CORRUPT).isNotNull() & (found != F.lit(expected)),
        F.format_string(f"field_count: expected {expected} fields, found %d", found),
    )


def _regex_escape(text: str) -> str:
    return "".join("\\" + ch if ch in r".^$*+?{}[]\|()" else ch for ch in text)


def _cast_reason(column: str, type_name: str) -> Column:
    raw = F.col(f"`{column}`")
    failed = raw.isNotNull() & (F.trim(raw) != "") & F.expr(f"try_cast(`{column}` AS {type_name})").isNull()
    return F.when(
        failed,
        F.format_string(f"bad_value: column {column}: '%s' is not a valid {type_name}", raw),
    )


def with_rejection_reason(df: DataFrame, *, declared: Mapping[str, str], fmt: str,
                          delimiter: str = ",") -> DataFrame:
    """Add `_rejection_reason`: null for a good row, else why it cannot enter bronze."""
    if fmt == "csv":
        structural = _field_count_reason(len(declared), delimiter)
    else:
        structural = F.when(F.col(CORRUPT).isNotNull(), F.lit("malformed_json: not a complete JSON object"))
    value_reasons = [
        _cast_reason(column, type_name)
        for column, type_name in declared.items()
        if type_name.strip().lower() != "string"
    ]
    reason = F.coalesce(structural, F.concat_ws("; ", *value_reasons)) if value_reasons else structural
    is_corrupt_without_reason = F.col(CORRUPT).isNotNull() & (F.coalesce(reason, F.lit("")) == "")
    return df.withColumn(
        REASON,
        F.when(is_corrupt_without_reason, F.lit("malformed_record: rejected by the parser"))
        .otherwise(F.nullif(reason, F.lit(""))),
    )


def bronze_rows(df: DataFrame, *, declared: Mapping[str, str]) -> DataFrame:
    """Good rows, typed as declared, with the ingestion metadata columns."""
    typed = [F.expr(f"CAST(`{c}` AS {t})").alias(c) for c, t in declared.items()]
    return (
        df.filter(F.col(REASON).isNull())
        .select(*typed, *METADATA_COLUMNS)
    )


def quarantine_rows(df: DataFrame, *, declared: Mapping[str, str]) -> DataFrame:
    """Rejected rows with the raw record (the original line when Spark kept it) and the reason."""
    as_json = F.to_json(F.struct(*[F.col(f"`{c}`") for c in declared]))
    return (
        df.filter(F.col(REASON).isNotNull())
        .select(
            F.col("_source").alias("source"),
            F.col("_source_file").alias("source_file"),
            F.coalesce(F.col(CORRUPT), as_json).alias("raw_record"),
            F.col(REASON).alias("reason"),
            F.col("_ingested_at").alias("ingested_at"),
            F.col("_batch_id").alias("batch_id"),
        )
    )


def with_metadata(df: DataFrame, *, source: str, source_file: Column, batch_id: int) -> DataFrame:
    """Ingestion metadata every bronze row carries: where it came from, when, in which batch."""
    return df.select(
        "*",
        F.lit(source).alias("_source"),
        source_file.alias("_source_file"),
        F.current_timestamp().alias("_ingested_at"),
        F.lit(batch_id).cast("bigint").alias("_batch_id"),
    )


def with_row_hash(df: DataFrame, columns: list[str]) -> DataFrame:
    """Content hash of the source columns: the identity of a JDBC row for idempotent inserts."""
    return df.withColumn("_row_hash", F.sha2(F.to_json(F.struct(*[F.col(f"`{c}`") for c in columns])), 256))
