"""The silver contract, one path for batch refine and the live stream.

`apply_contract` runs the chain every row goes through: conform (names, types, standard forms),
null keys, expectations, PII protection. `split_contract` then gives the rows that pass, each
with its content hash and the latest per key, and the quarantine table's rows. Both are pure
DataFrame functions; the callers persist the checked rows, count them once (`batch_counts`) and
stop on a `fail` rule (expectations.raise_on_fail_rules) before they write anything.

The content hash (`_row_hash`) covers the record's business columns as the contract declares
them (`content_columns`): its columns in contract order less the dropped ones, then the masked
copies. Not the lineage columns (`_source_file`, `_batch_id`, ...): the same record re-sent in
another file or batch is the same content, and silver's MERGE leaves a row whose hash is equal
untouched, so a replay rewrites nothing. Batch refine always hashed this set, so stored silver
hashes are unchanged; the live stream used to hash the frame's non-underscore columns (the
masked copies in place, not last), a different digest that only ever broke ties among rows
identical in every arrival column, and was never stored (the integration drops `_` columns).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakeboost.config.silver import Expectation, SilverTableConfig
from lakeboost.io.hashing import with_content_hash
from lakeboost.refine import conform as c
from lakeboost.refine import expectations as ex
from lakeboost.refine.pii import MASKED_SUFFIX, protect_pii
from lakeboost.spark.rows import first_row


def apply_contract(df: DataFrame, *, table: SilverTableConfig, pii_key: bytes) -> DataFrame:
    """Every row conformed, checked and protected, with its conformance errors (`_cast_errors`)
    and the rules it failed (expectations.HELPER_COLUMNS)."""
    return (
        df.transform(c.conform, table=table)
        .transform(c.with_null_key_errors, keys=table.keys)
        .transform(ex.apply_expectations, table.expectations)
        .transform(protect_pii, pii=table.pii, key=pii_key)
    )


def content_columns(table: SilverTableConfig) -> list[str]:
    """The columns the content hash covers, in its order (see the module's docstring)."""
    dropped = set(table.pii.drop)
    masked = [f"{col}{MASKED_SUFFIX}" for col in table.pii.mask if col in table.pii.hash]
    return [col for col in table.columns if col not in dropped] + masked


def split_contract(checked: DataFrame, *, table: SilverTableConfig, quarantine_as: str, run_id: str,
                   batch_id: int) -> tuple[DataFrame, DataFrame]:
    """(valid, quarantined) of `checked` (apply_contract's rows): the rows to write, with their
    content hash, the latest per key; and the quarantine rows, under the table name `quarantine_as`."""
    business = [col for col in content_columns(table) if col in checked.columns]
    valid = (
        ex.rows_passing(checked.filter(F.size(c.CAST_ERRORS) == 0).drop(c.CAST_ERRORS))
        .transform(with_content_hash, columns=business)
        .transform(c.latest_per_key, keys=table.keys, order_by=table.order_by)
    )
    return valid, quarantine_rows(checked, table=quarantine_as, run_id=run_id, batch_id=batch_id)


def quarantined_condition() -> Column:
    """True for a checked row that goes to quarantine: it did not conform (a cast failed, a key
    is null), or it failed a `quarantine` rule. Rows failing a `fail` rule never get here: they
    stop the run first (ex.raise_on_fail_rules)."""
    actions = F.coalesce(F.col(ex.FAILED_ACTIONS), F.array().cast("array<string>"))
    return (F.size(c.CAST_ERRORS) > 0) | F.array_contains(actions, "quarantine")


def quarantine_rows(checked: DataFrame, *, table: str, run_id: str, batch_id: int) -> DataFrame:
    """The quarantine table's rows for a batch: the source table, the reasons (a row that did not
    conform gets its conformance errors, "; "-joined: its rules were checked on nulls and add
    nothing; any other row the rules it failed, warn included, as ex.rows_quarantined lists them),
    the original record as JSON with its nulls, and where it came from.

    No value is copied out of the record's protection: `checked` has been through protect_pii
    (hashed, masked, dropped as the table's pii says), and failed_rules holds rule names and
    conformance errors, which name a column and its type, never a value."""
    cast_failed = F.size(c.CAST_ERRORS) > 0
    expectation_rows = ex.rows_quarantined(checked.filter(~cast_failed).drop(c.CAST_ERRORS), table=table)
    record = [F.col(f"`{col}`") for col in checked.columns if not col.startswith("_failed") and col != c.CAST_ERRORS]
    cast_rows = checked.filter(cast_failed).select(
        F.lit(table).alias("table"),
        F.concat_ws("; ", F.col(c.CAST_ERRORS)).alias("failed_rules"),
        F.to_json(F.struct(*record), {"ignoreNullFields": "false"}).alias("record"),
    )
    return (
        cast_rows.unionByName(expectation_rows.select("table", "failed_rules", "record"))
        .select("table", "failed_rules", "record", F.lit(run_id).alias("run_id"),
                F.lit(batch_id).cast("bigint").alias("batch_id"), F.current_timestamp().alias("quarantined_at"))
    )


@dataclass(frozen=True)
class BatchCounts:
    """What one aggregation over a checked batch counts."""

    rows_in: int
    conformance: int  # rows that did not conform (a cast failed, a key is null)
    quarantined: int  # those, plus rows failing a `quarantine` rule
    dropped: int  # rows a `drop` rule removed
    failed: dict[str, int]  # per rule: rows that conformed and failed it (the quality table's counts)
    violations: dict[str, int]  # per `fail` rule: rows failing it, conformed or not (the run stops)


def batch_counts(checked: DataFrame, expectations: Mapping[str, Expectation] | None = None) -> BatchCounts:
    """Every count a batch needs (refine and the live stream), in one aggregation: the totals, each
    rule's failures among the conformed rows, and the `fail` rules' violations. Three passes over
    the batch before, one of them a job per table per batch for the quality table alone."""
    expectations = expectations or {}
    quarantined = quarantined_condition()
    conformed_row = F.size(c.CAST_ERRORS) == 0
    actions = F.coalesce(F.col(ex.FAILED_ACTIONS), F.array().cast("array<string>"))
    rules = list(expectations)
    fail_rules = [rule for rule, e in expectations.items() if e.action == "fail"]
    row = first_row(checked.agg(
        F.count(F.lit(1)).alias("rows_in"),
        F.sum((~conformed_row).cast("int")).alias("conformance"),
        F.sum(quarantined.cast("int")).alias("quarantined"),
        F.sum((~quarantined & F.array_contains(actions, "drop")).cast("int")).alias("dropped"),
        *[ex.count_failing(rule, conformed_row).alias(f"_failed_{i}") for i, rule in enumerate(rules)],
        *[ex.count_failing(rule).alias(f"_violated_{i}") for i, rule in enumerate(fail_rules)],
    ))
    return BatchCounts(
        **{k: int(row[k] or 0) for k in ("rows_in", "conformance", "quarantined", "dropped")},
        failed={rule: int(row[f"_failed_{i}"]) for i, rule in enumerate(rules)},
        violations={rule: int(row[f"_violated_{i}"]) for i, rule in enumerate(fail_rules)},
    )
