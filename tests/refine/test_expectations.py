"""Expectations: every action, NULL as failure, precedence, exact rule counts and row accounting."""

from __future__ import annotations

from functools import reduce

import pytest
from chispa import assert_df_equality
from lakeboost.config.silver import Expectation
from lakeboost.errors import ConfigError, DataContractError
from lakeboost.refine.expectations import (
    apply_expectations,
    count_failing,
    fail_rule_violations,
    raise_on_fail_rules,
    rows_dropped,
    rows_passing,
    rows_quarantined,
    rule_counts,
    validate_expectation_sql,
)
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

TXN_DDL = "txn_id string, amount double, currency string, customer_id bigint"
RULES = {
    "amount_positive": Expectation(expr="amount > 0", action="quarantine"),
    "currency_known": Expectation(expr="currency IN ('EUR', 'USD')", action="drop"),
    "customer_present": Expectation(expr="customer_id IS NOT NULL", action="warn"),
    "amount_plausible": Expectation(expr="amount < 1000", action="fail"),
}
NO_FAIL_RULES = {rule: e for rule, e in RULES.items() if e.action != "fail"}


def transactions(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(
        [("T1", 10.0, "EUR", 1),       # passes everything
         ("T2", -5.0, "EUR", 2),       # quarantine
         ("T3", 5.0, "GBP", 3),        # drop
         ("T4", -1.0, "GBP", 4),       # quarantine and drop: quarantined once
         ("T5", None, "EUR", 5),       # NULL amount: quarantine (unknown is not passed)
         ("T6", 7.0, "USD", None),     # warn only: kept
         ("T6", 7.0, "USD", None),     # duplicate row: kept twice
         ("T7", 3.0, None, 7),         # NULL currency: drop
         ("T8", 5000.0, "EUR", 8),     # fail
         ("T9", 5000.0, "GBP", 9)],    # fail and drop: fail wins
        TXN_DDL,
    )


def test_apply_expectations_lists_failed_rules_and_actions_in_config_order(spark: SparkSession) -> None:
    actual = apply_expectations(transactions(spark), RULES)

    expected = spark.createDataFrame(
        [("T1", 10.0, "EUR", 1, [], []),
         ("T2", -5.0, "EUR", 2, ["amount_positive"], ["quarantine"]),
         ("T3", 5.0, "GBP", 3, ["currency_known"], ["drop"]),
         ("T4", -1.0, "GBP", 4, ["amount_positive", "currency_known"], ["quarantine", "drop"]),
         ("T5", None, "EUR", 5, ["amount_positive", "amount_plausible"], ["quarantine", "fail"]),
         ("T6", 7.0, "USD", None, ["customer_present"], ["warn"]),
         ("T6", 7.0, "USD", None, ["customer_present"], ["warn"]),
         ("T7", 3.0, None, 7, ["currency_known"], ["drop"]),
         ("T8", 5000.0, "EUR", 8, ["amount_plausible"], ["fail"]),
         ("T9", 5000.0, "GBP", 9, ["currency_known", "amount_plausible"], ["drop", "fail"])],
        TXN_DDL + ", _failed_rules array<string>, _failed_actions array<string>",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_splitters_apply_precedence_fail_quarantine_drop_warn(spark: SparkSession) -> None:
    checked = apply_expectations(transactions(spark), RULES)

    placed = (
        rows_passing(checked).select("txn_id", F.lit("passing").alias("place"))
        .unionByName(rows_dropped(checked).select("txn_id", F.lit("dropped").alias("place")))
        .unionByName(rows_quarantined(checked, table="t").select(
            F.get_json_object("record", "$.txn_id").alias("txn_id"), F.lit("quarantined").alias("place")))
        .unionByName(fail_rule_violations(checked).select("txn_id", F.lit("failed").alias("place")))
    )

    expected = spark.createDataFrame(
        [("T1", "passing"), ("T2", "quarantined"), ("T3", "dropped"), ("T4", "quarantined"), ("T5", "failed"),
         ("T6", "passing"), ("T6", "passing"), ("T7", "dropped"), ("T8", "failed"), ("T9", "failed")],
        "txn_id string, place string",
    )
    assert_df_equality(placed, expected, ignore_row_order=True, ignore_nullable=True)


def test_quarantine_keeps_the_record_and_every_failed_rule_once(spark: SparkSession) -> None:
    checked = apply_expectations(transactions(spark), NO_FAIL_RULES)

    actual = rows_quarantined(checked, table="silver.transactions")

    expected = spark.createDataFrame(
        [("silver.transactions", "amount_positive",
          '{"txn_id":"T2","amount":-5.0,"currency":"EUR","customer_id":2}'),
         ("silver.transactions", "amount_positive,currency_known",
          '{"txn_id":"T4","amount":-1.0,"currency":"GBP","customer_id":4}'),
         ("silver.transactions", "amount_positive",
          '{"txn_id":"T5","amount":null,"currency":"EUR","customer_id":5}')],
        "table string, failed_rules string, record string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_every_row_lands_in_exactly_one_place(spark: SparkSession) -> None:
    source = transactions(spark)
    schema = source.schema
    checked = apply_expectations(source, RULES)

    def unquarantined(df: DataFrame) -> DataFrame:
        return df.select(F.from_json("record", schema).alias("r")).select("r.*")

    recombined = (
        rows_passing(checked)
        .unionByName(rows_dropped(checked))
        .unionByName(unquarantined(rows_quarantined(checked, table="t")))
        .unionByName(fail_rule_violations(checked).drop("_failed_rules"))
    )
    assert_df_equality(recombined, source, ignore_row_order=True, ignore_nullable=True)


def test_without_fail_violations_rows_in_equal_passing_plus_dropped_plus_quarantined(spark: SparkSession) -> None:
    source = transactions(spark).filter(~F.col("txn_id").isin("T5", "T8", "T9"))
    checked = apply_expectations(source, RULES)

    parts = {"in": source, "passing": rows_passing(checked), "dropped": rows_dropped(checked),
             "quarantined": rows_quarantined(checked, table="t"), "failed": fail_rule_violations(checked)}
    counted = [df.agg(F.count(F.lit(1)).alias("rows")).select(F.lit(name).alias("part"), "rows")
               for name, df in parts.items()]
    counts = {row.part: row.rows for row in reduce(DataFrame.unionByName, counted).collect()}

    assert counts == {"in": 7, "passing": 3, "dropped": 2, "quarantined": 2, "failed": 0}
    assert counts["in"] == counts["passing"] + counts["dropped"] + counts["quarantined"]


def test_rule_counts_are_exact_per_rule(spark: SparkSession) -> None:
    checked = apply_expectations(transactions(spark), RULES)

    row = checked.agg(F.count(F.lit(1)).alias("rows"), *[count_failing(r).alias(r) for r in RULES]).collect()[0]

    actual = rule_counts(RULES, rows=row["rows"], failed={r: row[r] for r in RULES})

    assert actual == [("amount_positive", "quarantine", 7, 3),
                      ("currency_known", "drop", 6, 4),
                      ("customer_present", "warn", 8, 2),
                      ("amount_plausible", "fail", 7, 3)]
    # `where` counts the failures among some of the rows only.
    among = checked.agg(count_failing("currency_known", F.col("amount") > 0).alias("n")).collect()[0]["n"]
    assert among == checked.filter((F.col("amount") > 0) & F.array_contains("_failed_rules", "currency_known")).count()


def test_no_expectations_keep_every_row_and_count_nothing(spark: SparkSession) -> None:
    checked = apply_expectations(transactions(spark), {})

    assert_df_equality(rows_passing(checked), transactions(spark), ignore_row_order=True, ignore_nullable=True)
    assert rule_counts({}, rows=checked.count(), failed={}) == []


def test_fail_rule_raises_with_rule_expression_count_and_sample_keys(spark: SparkSession) -> None:
    checked = apply_expectations(transactions(spark), RULES)

    with pytest.raises(DataContractError) as caught:
        raise_on_fail_rules(checked, expectations=RULES, key_columns=("txn_id",), table="silver.transactions")

    assert str(caught.value) == (
        "silver.transactions breaks its data contract: rule 'amount_plausible' (`amount < 1000`) is false or null "
        "for 3 row(s), e.g. txn_id = ['T5', 'T8', 'T9']. Fix the source rows, or change the rule's action from "
        "'fail' in the table's expectations config."
    )
    assert caught.value.exit_code == 7


def test_fail_rule_sample_is_limited(spark: SparkSession) -> None:
    checked = apply_expectations(transactions(spark), RULES)

    with pytest.raises(DataContractError, match=r"for 3 row\(s\), e\.g\. txn_id/currency = \['\([^)]*\)'\]\."):
        raise_on_fail_rules(checked, expectations=RULES, key_columns=("txn_id", "currency"), table="t", sample=1)


def test_fail_rules_that_hold_do_not_raise(spark: SparkSession) -> None:
    checked = apply_expectations(transactions(spark).filter(F.col("amount") < 1000), RULES)

    raise_on_fail_rules(checked, expectations=RULES, key_columns=("txn_id",), table="t")


def test_fail_rules_counted_by_the_caller_need_no_job(spark: SparkSession) -> None:
    # Any job over this DataFrame fails: the counts given decide, and returning proves no job ran.
    trap = transactions(spark).filter(F.expr("raise_error('a job ran') IS NULL"))
    checked = apply_expectations(trap, RULES)

    raise_on_fail_rules(checked, expectations=RULES, key_columns=("txn_id",), table="t",
                        violations={"amount_plausible": 0})


def test_without_fail_rules_no_job_runs(spark: SparkSession) -> None:
    # Any job over this DataFrame fails, so returning normally proves none ran.
    trap = transactions(spark).filter(F.expr("raise_error('a job ran') IS NULL"))
    checked = apply_expectations(trap, NO_FAIL_RULES)

    raise_on_fail_rules(checked, expectations=NO_FAIL_RULES, key_columns=("txn_id",), table="t")

    with pytest.raises(Exception, match="a job ran"):
        checked.count()


@pytest.mark.parametrize("expr", ["amount >", "amount_eur > 0", "amount", "sum(amount) > 0"])
def test_invalid_expression_is_a_config_error_naming_the_rule(spark: SparkSession, expr: str) -> None:
    rules = {"amount_ok": Expectation(expr=expr, action="drop")}

    with pytest.raises(ConfigError) as caught:
        validate_expectation_sql(transactions(spark), rules)

    assert str(caught.value).startswith(f"expectation 'amount_ok': `{expr}` is not a valid boolean condition")
    with pytest.raises(ConfigError, match="amount_ok"):
        apply_expectations(transactions(spark), rules)


def test_missing_key_column_is_a_config_error(spark: SparkSession) -> None:
    checked = apply_expectations(transactions(spark), RULES)

    with pytest.raises(ConfigError, match=r"key columns \['id'\] of t"):
        raise_on_fail_rules(checked, expectations=RULES, key_columns=("id",), table="t")
