"""The MERGEs behind TableCatalog.upsert and insert_new_rows: latest wins on a key, a row updates
its match only when it is newer and different (its content hash differs), and only rows that
will change reach the MERGE.

Each MERGE comes two ways with the same clauses: Delta's Python DeltaTable (a classic session) and
Delta's SQL `MERGE WITH SCHEMA EVOLUTION INTO` over a temporary view (Spark Connect, where the
Python DeltaTable needs delta-connect, which has no release for this Spark)."""

from __future__ import annotations

from delta.tables import DeltaTable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def merge_latest(target: DeltaTable, df: DataFrame, current: DataFrame, *, keys: tuple[str, ...],
                 order_by: tuple[str, ...], hash_column: str) -> None:
    """MERGE `df` (one row per key) into `target`, whose keys, order and hash columns are `current`."""
    on, update_when, effective = latest_rows(df, current, keys=keys, order_by=order_by, hash_column=hash_column)
    (
        target.alias("t")
        .merge(effective.alias("s"), on)
        .withSchemaEvolution()
        .whenMatchedUpdateAll(condition=update_when)
        .whenNotMatchedInsertAll()
        .execute()
    )


def latest_rows(df: DataFrame, current: DataFrame, *, keys: tuple[str, ...], order_by: tuple[str, ...],
                hash_column: str) -> tuple[str, str, DataFrame]:
    """(ON condition, update condition, the rows of `df` that will insert or update)."""
    on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    changed = f"NOT (t.`{hash_column}` <=> s.`{hash_column}`)"
    # Without an ordering the source is the truth: any different row replaces its match.
    update_when = f"{changed} AND ({newer_condition(order_by, hash_column)})" if order_by else changed
    # Only rows that will insert or update may reach the MERGE: Delta rewrites every file
    # holding a matched row even when the update condition is false, so a re-run would
    # otherwise rewrite the table and commit a version that changes nothing.
    effective = (
        df.alias("s").join(current.alias("t"), on=F.expr(on), how="left")
        .filter(F.expr(f"t.`{hash_column}` IS NULL OR ({update_when})"))
        .select("s.*")
    )
    return on, update_when, effective


def merge_latest_sql(target: str, source_view: str, *, on: str, update_when: str) -> str:
    """`merge_latest`'s MERGE as SQL: `target` a table reference, `source_view` a temp view of the
    rows `latest_rows` kept."""
    return (f"MERGE WITH SCHEMA EVOLUTION INTO {target} t USING {source_view} s ON {on} "
            f"WHEN MATCHED AND ({update_when}) THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *")


def insert_missing_sql(target: str, source_view: str, key_condition: str) -> str:
    """`insert_missing`'s MERGE as SQL."""
    return (f"MERGE WITH SCHEMA EVOLUTION INTO {target} t USING {source_view} s ON {key_condition} "
            "WHEN NOT MATCHED THEN INSERT *")


def insert_missing(target: DeltaTable, df: DataFrame, key_condition: str) -> None:
    """MERGE inserting only the rows of `df` no row of `target` matches on `key_condition` (t./s. aliases)."""
    (
        target.alias("t")
        .merge(df.alias("s"), key_condition)
        .withSchemaEvolution()
        .whenNotMatchedInsertAll()
        .execute()
    )


def newer_condition(order_by: tuple[str, ...], hash_column: str) -> str:
    """SQL: source row s sorts after target row t by (order_by..., hash) — the latest wins."""
    clauses: list[str] = []
    equal_so_far: list[str] = []
    for column in (*order_by, hash_column):
        s_col, t_col = f"s.`{column}`", f"t.`{column}`"
        greater = f"({s_col} > {t_col} OR ({t_col} IS NULL AND {s_col} IS NOT NULL))"
        clauses.append(" AND ".join([*equal_so_far, greater]))
        equal_so_far.append(f"{s_col} <=> {t_col}")
    return " OR ".join(f"({c})" for c in clauses)
