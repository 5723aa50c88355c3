"""Conformance: bronze rows to the silver column contract (names, types, standard forms).

Casting is done here with `try_cast`/`try_to_timestamp` so that a value that does not convert
is reported with its column and expected type (`_cast_errors`), instead of silently becoming
NULL. The value itself is not copied into the report: it may be personal data, and the report
lands in a rules column of silver.quarantine that PII protection does not touch. The row's
lineage columns (file, batch, position) find the raw value in bronze.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakeboost.config.silver import ColumnSpec, SilverTableConfig
from lakeboost.io.hashing import ROW_HASH

CAST_ERRORS = "_cast_errors"
# Arrival order of a bronze row: its ingest micro-batch, its source file's modification time, the
# file, its position in the batch's read order (rising with its place in the file). Older bronze
# tables lack the last ones; a column missing from a batch is left out of the order.
ARRIVAL_COLUMNS = ("_batch_id", "_source_modified_at", "_source_file", "_source_position")
LINEAGE_COLUMNS = ("_source_file", "_ingested_at", "_batch_id", "_source_modified_at", "_source_position")


def _raw_value(name: str, spec: ColumnSpec) -> Column:
    return F.expr(spec.expr) if spec.expr else F.col(f"`{name}`")


def _typed_value(raw: Column, spec: ColumnSpec) -> Column:
    type_name = spec.type.strip().lower()
    if spec.format and type_name in ("timestamp", "timestamp_ntz"):
        return F.try_to_timestamp(raw.cast("string"), F.lit(spec.format))
    if spec.format and type_name == "date":
        return F.try_to_timestamp(raw.cast("string"), F.lit(spec.format)).cast("date")
    return raw.try_cast(spec.type)


def _standardised(value: Column, name: str, table: SilverTableConfig, is_string: bool) -> Column:
    if not is_string:
        return value
    if table.trim_strings:
        value = F.nullif(F.trim(value), F.lit(""))
    if name in table.lower:
        value = F.lower(value)
    if name in table.upper:
        value = F.upper(value)
    return value


def conform(df: DataFrame, *, table: SilverTableConfig) -> DataFrame:
    """Typed, standardised columns in contract order, lineage columns, and `_cast_errors`.

    `_cast_errors` is an array of "column: value is not a valid <type>" (empty when clean): the
    column and the expected type, never the value (see the module's docstring).
    """
    raw_columns = {name: _raw_value(name, spec) for name, spec in table.columns.items()}
    staged = df.select(
        *[raw.alias(f"__raw_{name}") for name, raw in raw_columns.items()],
        *[F.col(c) for c in LINEAGE_COLUMNS if c in df.columns],
    )
    typed, errors = [], []
    for name, spec in table.columns.items():
        raw = F.col(f"`__raw_{name}`")
        value = _typed_value(raw, spec)
        is_string = spec.type.strip().lower() == "string"
        typed.append(_standardised(value, name, table, is_string).alias(name))
        failed = raw.isNotNull() & (F.trim(raw.cast("string")) != "") & value.isNull()
        errors.append(F.when(failed, F.lit(cast_error(name, spec))))
    return staged.select(
        *typed,
        *[F.col(c) for c in LINEAGE_COLUMNS if c in df.columns],
        F.filter(F.array(*errors), lambda e: e.isNotNull()).alias(CAST_ERRORS),
    )


def cast_error(name: str, spec: ColumnSpec) -> str:
    """The conformance error of a value of column `name` that does not convert (no value in it)."""
    pattern = f" (format {spec.format})" if spec.format else ""
    return f"{name}: value is not a valid {spec.type}{pattern}"


def with_null_key_errors(df: DataFrame, *, keys: tuple[str, ...]) -> DataFrame:
    """Append "key <k> is null" to `_cast_errors`: a row without its key cannot be upserted."""
    key_errors = [F.when(F.col(k).isNull(), F.lit(f"key {k} is null")) for k in keys]
    return df.withColumn(
        CAST_ERRORS,
        F.concat(F.col(CAST_ERRORS), F.filter(F.array(*key_errors), lambda e: e.isNotNull())),
    )


def arrival_order(columns: list[str], *, after: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The arrival-order columns (ARRIVAL_COLUMNS) among `columns`, less those already in `after`."""
    return tuple(c for c in ARRIVAL_COLUMNS if c in columns and c not in after)


def latest_per_key(df: DataFrame, *, keys: tuple[str, ...], order_by: tuple[str, ...]) -> DataFrame:
    """One row per key: the latest by `order_by` (descending), then the latest to arrive (the
    arrival-order columns the batch has), then the highest row hash.

    With no `order_by` the latest arrival wins: two versions of a key in one backlog batch (two
    days' files read together, with one `_ingested_at`) keep the later file's. NULL sorts as
    oldest at every level. The hash makes the choice deterministic where nothing else differs,
    so a re-run picks the same winner.
    """
    arrival = arrival_order(df.columns, after=order_by)
    ordering = [F.col(c).desc_nulls_last() for c in (*order_by, *arrival)] + [F.col(ROW_HASH).desc()]
    window = Window.partitionBy(*keys).orderBy(*ordering).rowsBetween(Window.unboundedPreceding,
                                                                      Window.currentRow)
    return (
        df.withColumn("__rank", F.row_number().over(window))
        .filter(F.col("__rank") == 1)
        .drop("__rank")
    )
