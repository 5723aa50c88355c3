"""PII protection: keyed hashes that join, masks, drops, and a key that never leaks into plans or logs."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import sys
import types
from pathlib import Path

import pytest
from chispa import assert_df_equality
from lakeboost.config.silver import PiiConfig
from lakeboost.errors import ConfigError, PiiKeyError
from lakeboost.io import TableCatalog
from lakeboost.refine.pii import mask_keep_last, protect_pii, resolve_pii_key
from lakeboost.refine.silver import refine_tables
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from tests.helpers import make_config

KEY = b"canary-key-0123456789"
CUSTOMERS_DDL = "customer_id bigint, email string, card string, phone string"


def digest(value: str) -> str:
    return hmac.new(KEY, value.encode("utf-8"), hashlib.sha256).hexdigest()


def customers(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(
        [(1, "ana@example.com", "4111222233334444", "+33 6 12"),
         (2, "zoë@example.com", "123", "+33 6 34"),         # non-ASCII; card shorter than the mask
         (3, None, None, None),                              # nulls stay null
         (4, "ana@example.com", "4111222233334444", None)],  # duplicate values hash equal
        CUSTOMERS_DDL,
    )


def test_hash_mask_and_drop_keep_column_order(spark: SparkSession) -> None:
    pii = PiiConfig(hash=("customer_id", "email"), mask={"card": 4}, drop=("phone",))

    actual = protect_pii(customers(spark), pii=pii, key=KEY)

    expected = spark.createDataFrame(
        [(digest("1"), digest("ana@example.com"), "************4444"),
         (digest("2"), digest("zoë@example.com"), "***"),
         (digest("3"), None, None),
         (digest("4"), digest("ana@example.com"), "************4444")],
        "customer_id string, email string, card string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_column_both_hashed_and_masked_gets_a_masked_copy(spark: SparkSession) -> None:
    pii = PiiConfig(hash=("card",), mask={"card": 4})

    actual = protect_pii(customers(spark).select("customer_id", "card"), pii=pii, key=KEY)

    expected = spark.createDataFrame(
        [(1, digest("4111222233334444"), "************4444"), (2, digest("123"), "***"),
         (3, None, None), (4, digest("4111222233334444"), "************4444")],
        "customer_id bigint, card string, card_masked string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_mask_keeps_last_characters_and_hides_short_values_entirely(spark: SparkSession) -> None:
    values = spark.createDataFrame([("4111222233334444",), ("abcd",), ("abc",), ("",), (None,)], "v string")

    actual = values.select(
        "v", mask_keep_last(F.col("v"), 4).alias("last4"), mask_keep_last(F.col("v"), 0).alias("none")
    )

    expected = spark.createDataFrame(
        [("4111222233334444", "************4444", "****************"), ("abcd", "****", "****"),
         ("abc", "***", "***"), ("", "", ""), (None, None, None)],
        "v string, last4 string, none string",
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_join_on_hashed_keys_matches_join_on_raw_keys(spark: SparkSession) -> None:
    people = spark.createDataFrame([("C1", "Ana"), ("C2", "Bo"), ("C3", "Cy"), (None, "Nobody")],
                                   "customer_id string, name string")
    txns = spark.createDataFrame([("T1", "C1"), ("T2", "C1"), ("T3", "C2"), ("T4", "C9"), ("T5", None)],
                                 "txn_id string, customer_id string")
    pii = PiiConfig(hash=("customer_id",))

    raw = txns.join(people, on="customer_id", how="inner").select("txn_id", "name")
    hashed = (
        protect_pii(txns, pii=pii, key=KEY)
        .join(protect_pii(people, pii=pii, key=KEY), on="customer_id", how="inner")
        .select("txn_id", "name")
    )

    expected = spark.createDataFrame([("T1", "Ana"), ("T2", "Ana"), ("T3", "Bo")], "txn_id string, name string")
    assert_df_equality(raw, expected, ignore_row_order=True, ignore_nullable=True)
    assert_df_equality(hashed, expected, ignore_row_order=True, ignore_nullable=True)


def test_key_appears_in_neither_the_plans_nor_the_rows(spark: SparkSession) -> None:
    protected = protect_pii(customers(spark), pii=PiiConfig(hash=("email",), mask={"card": 4}), key=KEY)

    rows = protected.collect()
    execution = protected._jdf.queryExecution()
    plans = execution.toString() + execution.executedPlan().toString() + execution.simpleString()

    assert "pii_hmac_sha256" in plans  # the plan is the hashing one, so absence of the key means something
    for secret in (KEY.decode(), KEY.hex(), "canary"):
        assert secret not in plans
        assert all(secret not in str(value) for row in rows for value in row)


def test_masking_and_dropping_need_no_key(spark: SparkSession) -> None:
    actual = protect_pii(customers(spark), pii=PiiConfig(mask={"card": 4}, drop=("email", "phone")), key=b"")

    expected = spark.createDataFrame(
        [(1, "************4444"), (2, "***"), (3, None), (4, "************4444")], "customer_id bigint, card string"
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_protect_pii_rejects_a_short_key_and_unknown_columns(spark: SparkSession) -> None:
    with pytest.raises(PiiKeyError, match="at least 16"):
        protect_pii(customers(spark), pii=PiiConfig(hash=("email",)), key=b"short")
    with pytest.raises(ConfigError, match=r"pii.hash names \['mail'\]"):
        protect_pii(customers(spark), pii=PiiConfig(hash=("mail",)), key=KEY)
    with pytest.raises(ConfigError, match=r"\['phone'\] are both dropped"):
        protect_pii(customers(spark), pii=PiiConfig(hash=("phone",), drop=("phone",)), key=KEY)


def test_key_is_read_from_the_environment_and_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lakeboost")

    key = resolve_pii_key(PiiConfig(secret_env="MY_PII_KEY"), environ={"MY_PII_KEY": KEY.decode()})

    assert key == KEY
    assert "MY_PII_KEY" in caplog.text
    assert KEY.decode() not in caplog.text


@pytest.mark.parametrize("environ", [{}, {"LAKEBOOST_PII_KEY": ""}])
def test_missing_key_is_an_error_with_no_unkeyed_fallback(environ: dict[str, str]) -> None:
    with pytest.raises(PiiKeyError) as caught:
        resolve_pii_key(PiiConfig(), environ=environ)

    message = str(caught.value)
    assert "environment variable LAKEBOOST_PII_KEY is unset or empty" in message
    assert "no fallback to an unkeyed hash" in message
    assert "export LAKEBOOST_PII_KEY=$(openssl rand -hex 32)" in message
    assert caught.value.exit_code == 8


def test_short_key_is_rejected() -> None:
    with pytest.raises(PiiKeyError, match="is 9 bytes; at least 16 are required"):
        resolve_pii_key(PiiConfig(), environ={"LAKEBOOST_PII_KEY": "too-short"})


def test_key_is_read_from_a_databricks_secret_scope(spark: SparkSession, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, str]] = []

    class FakeSecrets:
        def get(self, scope: str, key: str) -> str:
            asked.append((scope, key))
            return KEY.decode()

    class FakeDBUtils:
        def __init__(self, session: SparkSession) -> None:
            self.secrets = FakeSecrets()

    monkeypatch.setitem(sys.modules, "pyspark.dbutils", types.SimpleNamespace(DBUtils=FakeDBUtils))

    key = resolve_pii_key(PiiConfig(secret_scope="lakeboost/pii-key"), environ={})

    assert (key, asked) == (KEY, [("lakeboost", "pii-key")])


def test_secret_scope_off_databricks_says_to_use_the_environment(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "pyspark.dbutils", raising=False)

    with pytest.raises(PiiKeyError, match="Databricks secrets are not available.*export LAKEBOOST_PII_KEY"):
        resolve_pii_key(PiiConfig(secret_scope="lakeboost/pii-key"), environ={})
    with pytest.raises(ConfigError, match="must be 'scope/key'"):
        resolve_pii_key(PiiConfig(secret_scope="lakeboost"), environ={})


# Clear personal data of the rows that go to quarantine: none may reach a silver table.
CANARIES = ("canary.two@example.com", "CANARYCARD0002", "CANARY-PHONE-2", "CANARY-DOB-2",
            "canary-three-no-at-sign", "CANARYCARD0003", "5550003333", "1977-07-07")


def test_quarantine_holds_no_clear_personal_data(spark: SparkSession, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows with PII that fail a cast (P2) or a contract (P3): failed_rules names columns and
    types, never values, and the record is hashed, masked and dropped as the pii config says."""
    monkeypatch.setenv("LAKEBOOST_PII_KEY", KEY.decode())
    config = make_config(tmp_path, silver={"tables": {"people": {
        "source": "bronze.people", "keys": ["person_id"], "order_by": [],
        "columns": {"person_id": {"type": "string"}, "amount": {"type": "double"}, "email": {"type": "string"},
                    "card": {"type": "string"}, "phone": {"type": "bigint"},
                    "dob": {"type": "date", "format": "yyyy-MM-dd"}},
        "expectations": {"amount_positive": {"expr": "amount > 0", "action": "quarantine"},
                         "email_valid": {"expr": "email LIKE '%@%'", "action": "quarantine"}},
        "pii": {"hash": ["email", "card"], "mask": {"card": 4, "phone": 2}, "drop": ["dob"]}}}})
    catalog = TableCatalog(spark, config.storage)
    bronze = spark.createDataFrame([
        ("P1", "10", "p1@example.com", "4000000000000001", "5550001", "1990-01-01"),
        ("P2", "20", "canary.two@example.com", "CANARYCARD0002", "CANARY-PHONE-2", "CANARY-DOB-2"),  # casts
        ("P3", "-1", "canary-three-no-at-sign", "CANARYCARD0003", "5550003333", "1977-07-07"),  # contract
    ], "person_id string, amount string, email string, card string, phone string, dob string")
    lineage = [F.lit("people.csv").alias("_source_file"), F.current_timestamp().alias("_ingested_at"),
               F.lit(0).cast("bigint").alias("_batch_id")]
    catalog.write(bronze.select("*", *lineage), "bronze.people")

    refine_tables(catalog, config)

    record = "struct<person_id string, amount double, email string, card string, card_masked string, phone string>"
    quarantine = catalog.read("silver.quarantine").select(
        "table", "failed_rules", F.from_json("record", record).alias("r")).select("table", "failed_rules", "r.*")
    expected = spark.createDataFrame([
        ("silver.people", "phone: value is not a valid bigint; dob: value is not a valid date (format yyyy-MM-dd)",
         "P2", 20.0, digest("canary.two@example.com"), digest("CANARYCARD0002"), "**********0002", None),
        ("silver.people", "amount_positive,email_valid",
         "P3", -1.0, digest("canary-three-no-at-sign"), digest("CANARYCARD0003"), "**********0003", "********33"),
    ], "table string, failed_rules string, person_id string, amount double, email string, card string, "
       "card_masked string, phone string")
    assert_df_equality(quarantine, expected, ignore_row_order=True, ignore_nullable=True)
    records = [json.loads(r.record) for r in catalog.read("silver.quarantine").collect()]
    assert all("dob" not in r for r in records) and len(records) == 2
    assert catalog.read("silver.people").select("person_id").collect() == [("P1",)]
    stored = [str(v) for t in ("silver.people", "silver.quarantine", "silver.data_quality")
              for row in catalog.read(t).collect() for v in row]
    assert not [c for c in CANARIES if any(c in v for v in stored)]
    files = [p for p in (tmp_path / "lake").rglob("*") if p.is_file()]
    # The byte scan sees clear values in Delta files (bronze's), so its silence on silver means something.
    assert all(any(c.encode() in p.read_bytes() for p in files if "/bronze/" in str(p)) for c in CANARIES)
    assert not [(c, p) for c in CANARIES for p in files if "/silver/" in str(p) and c.encode() in p.read_bytes()]
