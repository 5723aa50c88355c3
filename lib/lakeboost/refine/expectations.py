"""Data contracts for silver: per-row expectation results, and pure splitters by what they decide.

`apply_expectations` evaluates every rule once per row and records the rules a row failed and
their actions. The splitters then decide with one precedence, fail > quarantine > drop > warn, so
that each input row lands in exactly one of: passing (written, warn failures included), dropped,
quarantined, or failing a `fail` rule (the caller raises with `raise_on_fail_rules` before writing).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakeboost.config.silver import Expectation
from lakeboost.errors import ConfigError, DataContractError
from lakeboost.spark.sql_text import quoted_name

log = logging.getLogger(__name__)

FAILED_RULES = "_failed_rules"
FAILED_ACTIONS = "_failed_actions"
HELPER_COLUMNS = (FAILED_RULES, FAILED_ACTIONS)
QUARANTINE_COLUMNS = ("table", "failed_rules", "record")


def validate_expectation_sql(df: DataFrame, expectations: Mapping[str, Expectation]) -> None:
    """Check each expression parses and is a boolean row condition over `df`'s columns (analysis only, no job).

    Raises:
        ConfigError: names the rule, its expression and Spark's reason (unknown column, syntax error,
            not a boolean, an aggregate or window function).
    """
    for rule, expectation in expectations.items():
        try:
            # A filter is what a row condition must be valid in: it rejects non-boolean results,
            # aggregates and window functions, which a plain select would accept.
            df.filter(F.expr(expectation.expr)).schema  # noqa: B018 - forces analysis
        except AnalysisException as exc:
            raise ConfigError(
                f"expectation {rule!r}: `{expectation.expr}` is not a valid boolean condition over the columns "
                f"{df.columns}: {_first_line(exc)}. Fix the expression in the table's expectations config."
            ) from None


def apply_expectations(df: DataFrame, expectations: Mapping[str, Expectation]) -> DataFrame:
    """Add `_failed_rules` (array<string>, rule names in config order) and `_failed_actions` (their actions,
    aligned). A NULL expression result counts as failed: "unknown" is not "passed".

    Raises:
        ConfigError: an expression is invalid (see `validate_expectation_sql`).
    """
    validate_expectation_sql(df, expectations)
    failed = {rule: ~F.coalesce(F.expr(e.expr), F.lit(False)) for rule, e in expectations.items()}
    rules = [F.when(failed[rule], F.lit(rule)) for rule in expectations]
    actions = [F.when(failed[rule], F.lit(e.action)) for rule, e in expectations.items()]
    return df.select("*", _non_null(rules).alias(FAILED_RULES), _non_null(actions).alias(FAILED_ACTIONS))


def rows_passing(df: DataFrame) -> DataFrame:
    """Rows to write: no failed drop/quarantine/fail rule (rows failing only `warn` rules stay)."""
    blocking = _failed("fail") | _failed("quarantine") | _failed("drop")
    return df.filter(~blocking).select(*_original_columns(df))


def rows_quarantined(df: DataFrame, *, table: str) -> DataFrame:
    """Rows failing a `quarantine` rule (and no `fail` rule): table, failed_rules ("a,b": every rule the
    row failed, warn included), record (the row as JSON, nulls kept)."""
    record = F.to_json(F.struct(*_original_columns(df)), {"ignoreNullFields": "false"})
    return df.filter(_failed("quarantine") & ~_failed("fail")).select(
        F.lit(table).alias("table"),
        F.array_join(F.col(FAILED_RULES), ",").alias("failed_rules"),
        record.alias("record"),
    )


def rows_dropped(df: DataFrame) -> DataFrame:
    """Rows failing a `drop` rule and no `quarantine` or `fail` rule (those take precedence)."""
    dropped_only = _failed("drop") & ~_failed("quarantine") & ~_failed("fail")
    return df.filter(dropped_only).select(*_original_columns(df))


def fail_rule_violations(df: DataFrame) -> DataFrame:
    """Rows failing at least one `fail` rule, with their original columns and `_failed_rules`."""
    return df.filter(_failed("fail")).select(*_original_columns(df), F.col(FAILED_RULES))


def count_failing(rule: str, where: Column | None = None) -> Column:
    """Aggregate expression: the rows (of those matching `where`) that failed `rule`."""
    failed = F.array_contains(F.col(FAILED_RULES), rule)
    return F.count_if(failed if where is None else failed & where)


def rule_counts(expectations: Mapping[str, Expectation], *, rows: int,
                failed: Mapping[str, int]) -> list[tuple[str, str, int, int]]:
    """(rule, action, passed, failed) per rule, from the `rows` checked and each rule's failures
    among them (counted with `count_failing` in the caller's one aggregation)."""
    return [(rule, e.action, rows - failed[rule], failed[rule]) for rule, e in expectations.items()]


def raise_on_fail_rules(df: DataFrame, *, expectations: Mapping[str, Expectation], key_columns: Sequence[str],
                        table: str, sample: int = 5, violations: Mapping[str, int] | None = None) -> None:
    """Raise when a row of `df` (output of `apply_expectations`) fails a `fail` rule; no job without such rules.

    The healthy path runs one aggregation, or none when the caller counted each `fail` rule's
    failing rows already (`violations`, with `count_failing`). Only when rules are violated does
    a second, limited collect fetch up to `sample` offending keys for the message.

    Raises:
        DataContractError: names the table, each violated rule, its expression, row count and sample keys.
        ConfigError: a key column is not in `df`.
    """
    fail_rules = {rule: e for rule, e in expectations.items() if e.action == "fail"}
    if not fail_rules:
        return
    missing = [k for k in key_columns if k not in df.columns]
    if missing:
        raise ConfigError(f"key columns {missing} of {table} are not in the DataFrame's columns {df.columns}")
    if violations is None:
        row = df.agg(*[count_failing(rule).alias(f"_{i}") for i, rule in enumerate(fail_rules)]).collect()[0]
        violations = {rule: row[f"_{i}"] for i, rule in enumerate(fail_rules)}
    violated = {rule: violations[rule] for rule in fail_rules if violations[rule]}
    if not violated:
        log.info("%s: %d fail-rule(s) hold on every row", table, len(fail_rules))
        return
    rows = fail_rule_violations(df).select(*[F.col(quoted_name(k)) for k in key_columns], F.col(FAILED_RULES))
    sampled = rows.limit(sample).collect()
    details = []
    for rule, count in violated.items():
        keys = sorted(_format_key(row, key_columns) for row in sampled if rule in row[FAILED_RULES])
        details.append(f"rule {rule!r} (`{fail_rules[rule].expr}`) is false or null for {count} row(s), "
                       f"e.g. {'/'.join(key_columns)} = {keys}")
    raise DataContractError(
        f"{table} breaks its data contract: " + "; ".join(details)
        + ". Fix the source rows, or change the rule's action from 'fail' in the table's expectations config."
    )


def _failed(action: str) -> Column:
    return F.array_contains(F.col(FAILED_ACTIONS), action)


def _non_null(items: list[Column]) -> Column:
    if not items:
        return F.array().cast("array<string>")
    return F.filter(F.array(*items), lambda item: item.isNotNull())


def _original_columns(df: DataFrame) -> list[Column]:
    return [F.col(quoted_name(c)) for c in df.columns if c not in HELPER_COLUMNS]


def _format_key(row: Any, key_columns: Sequence[str]) -> str:
    values = ["null" if row[k] is None else str(row[k]) for k in key_columns]
    return values[0] if len(values) == 1 else "(" + ", ".join(values) + ")"


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
