"""One silver contract for batch refine and the live stream: the rows the stream refines equal
the rows batch refine stores in silver (values and content hash), its quarantine the same
records with the same reasons, on a batch with a null key, failed expectations and PII."""

from __future__ import annotations

from pathlib import Path

import pytest
from chispa import assert_df_equality
from lakeboost.config.model import LakeboostConfig
from lakeboost.config.silver import Expectation
from lakeboost.io import TableCatalog
from lakeboost.refine.conform import CAST_ERRORS
from lakeboost.refine.contract import batch_counts, content_columns, split_contract
from lakeboost.refine.expectations import apply_expectations
from lakeboost.refine.pii import resolve_pii_key
from lakeboost.refine.silver import refine_tables
from lakeboost.score.stream import refine_live_events
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from tests.helpers import make_config

PII_KEY = "contract-test-pii-key-4b7e1d9a"
BRONZE = "txn_id string, amount string, event_time string, email string, card string, _source string, " \
         "_source_file string, _ingested_at timestamp, _batch_id bigint, _source_modified_at timestamp, " \
         "_source_position bigint"
CONTRACT = {
    "source": "bronze.txns", "keys": ["txn_id"], "order_by": ["_ingested_at"], "upper": ["txn_id"],
    "columns": {"txn_id": {"type": "string"}, "amount": {"type": "double"}, "card": {"type": "string"},
                "event_time": {"type": "timestamp", "format": "yyyy-MM-dd'T'HH:mm:ssXXX"},
                "email": {"type": "string"}},
    "expectations": {"amount_positive": {"expr": "amount > 0", "action": "quarantine"},
                     "not_huge": {"expr": "amount < 10000", "action": "drop"},
                     "has_email": {"expr": "email IS NOT NULL", "action": "warn"}},
    # card is hashed and masked: its masked copy follows it in the row (before event_time), and
    # comes last in the hash.
    "pii": {"hash": ["email", "card"], "mask": {"card": 4}},
}
ROWS = [
    ("t1", "10.5", "2026-01-01T10:00:00+00:00", "a@x.com", "4111111111111111"),
    (None, "3", "2026-01-01T10:01:00+00:00", "b@x.com", "4222222222222222"),  # null key
    ("t3", "-1", "2026-01-01T10:02:00+00:00", "c@x.com", "4333333333333333"),  # quarantine rule
    ("t4", "99999", "2026-01-01T10:03:00+00:00", "d@x.com", "4444444444444444"),  # drop rule
    ("t5", "abc", "2026-01-01T10:04:00+00:00", "e@x.com", "4555555555555555"),  # not a double
    ("t6", "7", "2026-01-01T10:05:00+00:00", None, "4666666666666666"),  # warn only: kept
    ("t1", "11.0", "2026-01-01T10:06:00+00:00", "a@x.com", "4111111111111111"),  # t1 again, later in the file
]
# The content hashes silver stored for ROWS before batch and stream shared one contract path
# (refine/silver.py's own chain): they must not change, or the next run would rewrite silver.
# The stream's own chain hashed card_masked in its place: 31fa2d0d... and 949d4210..., never stored.
SILVER_HASHES = {"T1": "b7e7c7cd36786f0cf0136bf740d1675ace1f2657685dd7d2f01b9759e3bf33f2",
                 "T6": "132fd178bbab1370221bd1bc13debf6196f19a0dc1c1cbdb8549898a653b7276"}


def bronze(spark: SparkSession) -> DataFrame:
    stamped = [(*r, "txns", "f0.csv", "2026-01-02 00:00:00", 0, "2026-01-02 00:00:00", i) for i, r in enumerate(ROWS)]
    return (spark.createDataFrame(stamped, BRONZE.replace("timestamp", "string"))
            .withColumn("_ingested_at", F.to_timestamp("_ingested_at"))
            .withColumn("_source_modified_at", F.to_timestamp("_source_modified_at")))


def config(tmp_path: Path) -> LakeboostConfig:
    return make_config(tmp_path, silver={"tables": {"txns": CONTRACT}},
                       scoring={"stream": {"source": "bronze.txns", "contract": "txns",
                                           "events_table": "silver.live_txns"}})


@pytest.fixture
def pii_key(monkeypatch: pytest.MonkeyPatch) -> bytes:
    monkeypatch.setenv("LAKEBOOST_PII_KEY", PII_KEY)
    return PII_KEY.encode()


def test_batch_refine_stores_the_content_hash_it_always_stored(spark: SparkSession, tmp_path: Path,
                                                               pii_key: bytes) -> None:
    cfg = config(tmp_path)
    catalog = TableCatalog(spark, cfg.storage)
    catalog.write(bronze(spark), "bronze.txns")

    refine_tables(catalog, cfg)

    silver = catalog.read("silver.txns")
    assert {r.txn_id: r._row_hash for r in silver.collect()} == SILVER_HASHES
    assert content_columns(cfg.silver.tables["txns"]) == ["txn_id", "amount", "card", "event_time", "email",
                                                          "card_masked"]


def test_live_events_are_refined_as_batch_refine_stores_them(spark: SparkSession, tmp_path: Path,
                                                             pii_key: bytes) -> None:
    cfg = config(tmp_path)
    table = cfg.silver.tables["txns"]
    catalog = TableCatalog(spark, cfg.storage)
    catalog.write(bronze(spark), "bronze.txns")
    refine_tables(catalog, cfg)

    checked = refine_live_events(bronze(spark), cfg, resolve_pii_key(table.pii))
    valid, quarantined = split_contract(checked, table=table, quarantine_as="silver.txns", run_id="r", batch_id=0)

    stored = catalog.read("silver.txns")
    assert_df_equality(valid.select(*stored.columns), stored, ignore_row_order=True, ignore_nullable=True)
    assert sorted(r.txn_id for r in stored.collect()) == ["T1", "T6"]
    assert stored.filter("txn_id = 'T1'").first()["amount"] == 11.0
    fields = ("table", "failed_rules", "record")
    stored_quarantine = catalog.read(catalog.tables.silver_quarantine).select(*fields)
    assert_df_equality(quarantined.select(*fields), stored_quarantine, ignore_row_order=True, ignore_nullable=True)
    assert quarantined.count() == 3


def test_batch_counts_equal_each_count_taken_alone(spark: SparkSession) -> None:
    # Generated rows: some did not conform (a cast error), some amounts are NULL, every action has a rule.
    rules = {"positive": Expectation(expr="amount > 0", action="quarantine"),
             "small": Expectation(expr="amount < 6", action="drop"),
             "even": Expectation(expr="id % 2 = 0", action="warn"),
             "sane": Expectation(expr="amount > -3", action="fail")}
    rows = spark.range(300).select(
        "id",
        F.when(F.col("id") % 7 == 0, None).otherwise(F.col("id") % 11 - 4).cast("double").alias("amount"),
        F.when(F.col("id") % 5 == 0, F.array(F.lit("amount: not a number")))
        .otherwise(F.array().cast("array<string>")).alias(CAST_ERRORS),
    )
    checked = apply_expectations(rows, rules)

    tally = batch_counts(checked, rules)

    def failing(rule: str) -> Column:  # NULL fails a rule
        return ~F.coalesce(F.expr(rules[rule].expr), F.lit(False))

    not_conformed = F.size(CAST_ERRORS) > 0
    quarantined = not_conformed | failing("positive")
    oracle = rows.agg(
        F.count(F.lit(1)).alias("rows_in"), F.count_if(not_conformed).alias("conformance"),
        F.count_if(quarantined).alias("quarantined"), F.count_if(~quarantined & failing("small")).alias("dropped"),
        *[F.count_if(~not_conformed & failing(rule)).alias(f"failed_{rule}") for rule in rules],
        F.count_if(failing("sane")).alias("violated_sane"),
    ).collect()[0]
    assert (tally.rows_in, tally.conformance, tally.quarantined, tally.dropped) == (
        oracle["rows_in"], oracle["conformance"], oracle["quarantined"], oracle["dropped"])
    assert tally.failed == {rule: oracle[f"failed_{rule}"] for rule in rules}
    assert tally.violations == {"sane": oracle["violated_sane"]}
    assert tally.rows_in == 300 and tally.conformance == 60 and tally.violations["sane"] > 0
    assert batch_counts(checked).failed == {} and batch_counts(checked).rows_in == 300
