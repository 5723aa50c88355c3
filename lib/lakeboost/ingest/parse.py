"""Pure transformations from raw source rows to bronze rows and quarantine rows.

Text sources are read with every declared column as STRING plus Spark's corrupt-record
column, then typed here with `try_cast`: that way each rejected row carries a reason naming
the column and the value, which Spark's own parser cannot say.

Nothing is lost on the way: a CSV file whose header orders the declared columns differently is
read by name (Spark's reader maps by position once a schema is given), one whose header names
other columns is quarantined with the file's and the declared columns; JSON fields the schema
does not declare are kept, as a JSON object, in `_rescued_data` (Auto Loader's convention).
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

CORRUPT = "_corrupt_record"
REASON = "_rejection_reason"
RESCUED = "_rescued_data"
# A rejected row's record as the quarantine keeps it (NULL for a row bronze takes): see typed_rows.
RAW = "_raw_record"
# Arrival order, for latest-wins among versions of a key read in one micro-batch: the source
# file's modification time, then the row's position in the batch's read order.
SOURCE_MODIFIED = "_source_modified_at"
SOURCE_POSITION = "_source_position"
METADATA_COLUMNS = ("_source", "_source_file", "_ingested_at", "_batch_id", SOURCE_MODIFIED, SOURCE_POSITION)
QUARANTINE_COLUMNS = (
    "source", "source_file", "raw_record", "reason", "ingested_at", "batch_id",
)


def string_read_schema(declared: Mapping[str, str]) -> StructType:
    """The schema text files are read with: declared columns as strings + the corrupt column."""
    ddl = ", ".join(f"`{c}` STRING" for c in declared) + f", `{CORRUPT}` STRING"
    schema = StructType.fromDDL(ddl)  # typed DataType; a column list always parses to a StructType
    assert isinstance(schema, StructType)
    return schema


def json_fields(value: Column, declared: Mapping[str, str], options: Mapping[str, str]) -> list[Column]:
    """A JSON line's declared fields (as strings), the corrupt-record column, and `_rescued_data`:
    the line's other top-level fields as a JSON object (NULL when there are none)."""
    parsed = F.from_json(value, string_read_schema(declared),
                         {**options, "mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT})
    # No options is None, not {}: Spark Connect sends {} as an untyped empty map, which from_json refuses.
    everything = F.from_json(value, "map<string,string>", dict(options) or None)
    names = F.array(*[F.lit(c) for c in declared])
    extra = F.map_filter(everything, lambda k, _v: ~F.array_contains(names, k))
    rescued = F.when(F.size(extra) > 0, F.to_json(extra))
    # A line that is not one JSON object: from_json gives no corrupt text for some shapes
    # (a bare array, a number), so the raw line is kept as the corrupt record whenever the
    # object parse failed.
    not_an_object = everything.isNull()
    return [
        *[F.when(~not_an_object, parsed[c]).alias(c) for c in declared],
        F.when(not_an_object, value).alias(CORRUPT),
        F.when(~not_an_object, rescued).alias(RESCUED),
    ]


def header_reasons(headers: Mapping[str, list[str]], declared: Mapping[str, str]) -> dict[str, str]:
    """Per file whose header does not name exactly the declared columns: why its rows are refused."""
    wanted = list(declared)
    reasons = {}
    for file, header in headers.items():
        if sorted(header) != sorted(wanted):
            missing = [c for c in wanted if c not in header]
            unexpected = [c for c in header if c not in wanted]
            reasons[file] = (f"header_mismatch: file {file} has columns {header}, the source declares {wanted}"
                             f" (missing {missing}, unexpected {unexpected})")
    return reasons


def by_header(df: DataFrame, *, file_column: str, headers: Mapping[str, list[str]],
              declared: Mapping[str, str]) -> DataFrame:
    """Declared columns mapped by header name for files whose header orders them differently.

    The reader assigns fields by position, so in a file with header [b, a] the column read as
    `a` holds b's values: each declared column is taken from the position its name has in that
    file's header.
    """
    wanted = list(declared)
    reordered = {f: h for f, h in headers.items() if h != wanted and sorted(h) == sorted(wanted)}
    if not reordered:
        return df
    mapped = []
    for column in wanted:
        value = None
        for file, header in reordered.items():
            source = F.col(f"`{wanted[header.index(column)]}`")
            when_file = F.col(file_column) == F.lit(file)
            value = F.when(when_file, source) if value is None else value.when(when_file, source)
        assert value is not None
        mapped.append(value.otherwise(F.col(f"`{column}`")).alias(column))
    return df.select(*mapped, *[F.col(f"`{c}`") for c in df.columns if c not in declared])


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
                          delimiter: str = ",", file_column: str | None = None,
                          file_reasons: Mapping[str, str] | None = None) -> DataFrame:
    """Add `_rejection_reason`: null for a good row, else why it cannot enter bronze.

    `file_reasons` refuses every row of the named files (in `file_column`) with the file's reason.
    """
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
    if file_reasons:
        assert file_column is not None
        refused = F.lit(None).cast("string")
        for file, why in file_reasons.items():
            refused = F.when(F.col(file_column) == F.lit(file), F.lit(why)).otherwise(refused)
        reason = F.coalesce(refused, reason)
    is_corrupt_without_reason = F.col(CORRUPT).isNotNull() & (F.coalesce(reason, F.lit("")) == "")
    return df.withColumn(
        REASON,
        F.when(is_corrupt_without_reason, F.lit("malformed_record: rejected by the parser"))
        .otherwise(F.nullif(reason, F.lit(""))),
    )


def with_cast_reasons(df: DataFrame, *, casts: Mapping[str, str]) -> DataFrame:
    """Typed columns with `try_cast` to the types in `casts` (the table's, where the source's
    type changed), the source's value kept as text for the quarantine, and `_rejection_reason`
    naming each value that does not convert (a plain cast would make it NULL without a trace)."""
    reasons = [_cast_reason(column, type_name) for column, type_name in casts.items()]
    reason = F.nullif(F.concat_ws("; ", *reasons), F.lit("")) if reasons else F.lit(None).cast("string")
    return df.select(
        *[F.col(f"`{c}`") for c in df.columns],
        F.lit(None).cast("string").alias(CORRUPT),
        reason.alias(REASON),
    )


def bronze_rows(df: DataFrame, *, declared: Mapping[str, str]) -> DataFrame:
    """Good rows, typed as declared, with the ingestion metadata columns (and `_rescued_data`
    where the source has it)."""
    typed = [F.expr(f"CAST(`{c}` AS {t})").alias(c) for c, t in declared.items()]
    rescued = [RESCUED] if RESCUED in df.columns else []
    return (
        df.filter(F.col(REASON).isNull())
        .select(*typed, *rescued, *METADATA_COLUMNS)
    )


def typed_rows(df: DataFrame, *, declared: Mapping[str, str]) -> DataFrame:
    """Checked rows (`with_rejection_reason`, `with_metadata`) as both outputs need them, computed
    once: the declared columns typed, the metadata, the reason, and for a rejected row only its raw
    record (`_raw_record`). `bronze_of_typed` and `quarantine_of_typed` select from it, so one
    persisted `typed_rows` feeds both writes without parsing or checking a row twice.

    The typed value is the `try_cast` the reason's check made (NULL where the check failed, and
    such a row never reaches bronze): one expression, which Spark evaluates once per row.
    """
    typed = [F.expr(f"try_cast(`{c}` AS {t})").alias(c) for c, t in declared.items()]
    rescued = [RESCUED] if RESCUED in df.columns else []
    raw = F.when(F.col(REASON).isNotNull(), F.coalesce(F.col(CORRUPT), _as_json(declared)))
    return df.select(*typed, *rescued, *METADATA_COLUMNS, F.col(REASON), raw.alias(RAW))


def bronze_of_typed(df: DataFrame) -> DataFrame:
    """The bronze rows of `typed_rows`: those without a rejection reason, as bronze stores them."""
    return df.filter(F.col(REASON).isNull()).drop(REASON, RAW)


def quarantine_of_typed(df: DataFrame) -> DataFrame:
    """The quarantine rows of `typed_rows`: the rejected ones, their raw record and reason."""
    return df.filter(F.col(REASON).isNotNull()).select(*_quarantine_columns(F.col(RAW)))


def _as_json(declared: Mapping[str, str]) -> Column:
    return F.to_json(F.struct(*[F.col(f"`{c}`") for c in declared]))


def _quarantine_columns(raw_record: Column) -> list[Column]:
    return [
        F.col("_source").alias("source"),
        F.col("_source_file").alias("source_file"),
        raw_record.alias("raw_record"),
        F.col(REASON).alias("reason"),
        F.col("_ingested_at").alias("ingested_at"),
        F.col("_batch_id").alias("batch_id"),
    ]


def quarantine_rows(df: DataFrame, *, declared: Mapping[str, str]) -> DataFrame:
    """Rejected rows with the raw record (the original line when Spark kept it) and the reason."""
    raw_record = F.coalesce(F.col(CORRUPT), _as_json(declared))
    return df.filter(F.col(REASON).isNotNull()).select(*_quarantine_columns(raw_record))


def with_metadata(df: DataFrame, *, source: str, source_file: Column, batch_id: int,
                  source_modified: Column | None = None) -> DataFrame:
    """Ingestion metadata every bronze row carries: where it came from, when, in which batch, and
    its arrival order (the source's modification time, then its position in the batch's read
    order: rows of one file keep their order in it)."""
    return df.select(
        "*",
        F.lit(source).alias("_source"),
        source_file.alias("_source_file"),
        F.current_timestamp().alias("_ingested_at"),
        F.lit(batch_id).cast("bigint").alias("_batch_id"),
        (source_modified if source_modified is not None else F.current_timestamp()).alias(SOURCE_MODIFIED),
        F.monotonically_increasing_id().alias(SOURCE_POSITION),
    )
