"""Conformance: bronze rows to the silver column contract (names, types, standard forms).

Casting is done here with `try_cast`/`try_to_timestamp` so that a value that does not convert
is reported with its column and value (`_cast_errors`), instead of silently becoming NULL.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakeboost.config.silver import ColumnSpec, SilverTableConfig

CAST_ERRORS = "_cast_errors"
LINEAGE_COLUMNS = ("_source_file", "_ingested_at", "_batch_id")


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

    `_cast_errors` is an array of "column: 'value' is not a valid <type>" (empty when clean).
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
        raw_text = raw.cast("string")
        failed = raw.isNotNull() & (F.trim(raw_text) != "") & value.isNull()
        errors.append(F.when(failed, F.format_string(f"{name}: '%s' is not a valid {spec.type}", raw_text)))
    return staged.select(
        *typed,
        *[F.col(c) for c in LINEAGE_COLUMNS if c in df.columns],
        F.filter(F.array(*errors), lambda e: e.isNotNull()).alias(CAST_ERRORS),
    )


def with_null_key_errors(df: DataFrame, *, keys: tuple[str, ...]) -> DataFrame:
    """Append "key <k> is null" to `_cast_errors`: a row without its key cannot be upserted."""
    key_errors = [F.when(F.col(k).isNull(), F.lit(f"key {k} is null")) for k in keys]
    return df.withColumn(
        CAST_ERRORS,
        F.concat(F.col(CAST_ERRORS), F.filter(F.array(*key_errors), lambda e: e.isNotNull())),
    )


def latest_per_key(df: DataFrame, *, keys: tuple[str, ...], order_by: tuple[str, ...]) -> DataFrame:
    """One row per key: the latest by `order_by` (descending), ties broken by the row hash.

    The tie-break makes the choice deterministic, so a re-run picks the same winner.
    """
    ordering = [F.col(c).desc_nulls_last() for c in order_by] + [F.col("_row_hash").desc()]
    window = Window.partitionBy(*keys).orderBy(*ordering).rowsBetween(Window.unboundedPreceding,
                                                                      Window.currentRow)
    return (
        df.withColumn("__rank", F.row_number().over(window))
        .filter(F.col("__rank") == 1)
        .drop("__rank")
    )


def with_content_hash(df: DataFrame, *, columns: list[str]) -> DataFrame:
    """`_row_hash` over the business columns: equal hash means nothing to update."""
    return df.withColumn("_row_hash", F.sha2(F.to_json(F.struct(*[F.col(f"`{c}`") for c in columns])), 256))
