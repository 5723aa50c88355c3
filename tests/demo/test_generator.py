"""The demo generator: deterministic, idempotent, and its manifest tells the truth about files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from card_fraud.generator import DemoManifest, generate_demo_data, read_manifest
from lakeboost.errors import ConfigError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

PARAMS = {"rows": 2000, "seed": 7, "days": 10, "start_date": "2026-01-01"}
HEADER = ("txn_id,customer_id,merchant_id,amount,currency,event_time,card_number,email,"
          "device_id,country,channel")


@pytest.fixture(scope="module")
def landing(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("landing")
    generate_demo_data(spark, landing_dir=str(path), **PARAMS)
    return path


@pytest.fixture(scope="module")
def manifest(landing: Path) -> DemoManifest:
    found = read_manifest(str(landing))
    assert found is not None
    return found


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _lines(spark: SparkSession, directory: Path) -> DataFrame:
    """Every line of every file in `directory`, with the date in its file name."""
    return (spark.read.option("mode", "PERMISSIVE").text(str(directory))
            .withColumn("file_day", F.regexp_extract("_metadata.file_name", r"(\d{4}-\d{2}-\d{2})",
                                                     1)))


def _transactions(spark: SparkSession, landing: Path) -> DataFrame:
    """Data lines split into fields, each classified the way a careful reader would."""
    fields = F.split("value", ",")
    valid_amount = fields[3].rlike(r"^\d+\.\d{2}$")
    parsed_time = F.try_to_timestamp(fields[5])
    return (_lines(spark, landing / "transactions").where(F.col("value") != HEADER)
            .select("value", "file_day", F.size(fields).alias("n_fields"),
                    fields[0].alias("txn_id"), fields[1].alias("customer_id"),
                    fields[2].alias("merchant_id"), valid_amount.alias("valid_amount"),
                    F.to_date(parsed_time).cast("string").alias("event_day")))


def test_same_parameters_give_identical_files_and_a_second_call_is_a_no_op(
        spark: SparkSession, landing: Path, manifest: DemoManifest, tmp_path: Path) -> None:
    stale = tmp_path / "transactions" / "transactions_1999-01-01.csv"  # an interrupted run
    stale.parent.mkdir()
    stale.write_text("left over\n")
    again = generate_demo_data(spark, landing_dir=str(tmp_path), **PARAMS)
    assert again == manifest
    assert _files(tmp_path) == _files(landing)
    before = {p: p.stat().st_mtime_ns for p in landing.rglob("*")}
    assert generate_demo_data(spark, landing_dir=str(landing), **PARAMS) == manifest
    assert {p: p.stat().st_mtime_ns for p in landing.rglob("*")} == before


def test_other_parameters_on_a_generated_dir_raise_config_error(
        spark: SparkSession, landing: Path) -> None:
    with pytest.raises(ConfigError, match="other parameters.*delete .*storage.landing"):
        generate_demo_data(spark, landing_dir=str(landing), **{**PARAMS, "seed": 8})


@pytest.mark.parametrize(("override", "key"), [
    ({"rows": 0}, "demo.rows"), ({"start_date": "1st of January"}, "demo.start_date"),
    ({"shift": -0.5}, "demo.shift"),
])
def test_invalid_parameters_raise_config_error_naming_the_key(
        spark: SparkSession, tmp_path: Path, override: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        generate_demo_data(spark, landing_dir=str(tmp_path), **{**PARAMS, **override})
    assert not any(tmp_path.iterdir())


def test_manifest_counts_what_the_transaction_files_hold(
        spark: SparkSession, landing: Path, manifest: DemoManifest) -> None:
    lines = _transactions(spark, landing).cache()
    field_count = F.col("n_fields") != 11
    bad_amount = ~field_count & ~F.col("valid_amount")
    bad_time = ~field_count & F.col("valid_amount") & F.col("event_day").isNull()
    valid = lines.where(~field_count & F.col("valid_amount") & F.col("event_day").isNotNull())
    first_file = valid.groupBy("txn_id").agg(F.min("file_day").alias("file_day"),
                                             F.first("event_day").alias("event_day"))
    observed = {
        "transaction_lines": lines.count(),
        "malformed_transactions": {"field_count": lines.where(field_count).count(),
                                   "bad_amount": lines.where(bad_amount).count(),
                                   "bad_timestamp": lines.where(bad_time).count()},
        "duplicate_transactions": lines.count() - lines.select("txn_id").distinct().count(),
        "exact_duplicate_lines": lines.count() - lines.select("value").distinct().count(),
        "late_transactions": first_file.where(F.col("file_day") > F.col("event_day")).count(),
        "distinct_txn_ids": lines.select("txn_id").distinct().count(),
    }
    assert observed == {
        "transaction_lines": manifest.transaction_lines,
        "malformed_transactions": manifest.malformed_transactions,
        "duplicate_transactions": manifest.duplicate_transactions,
        "exact_duplicate_lines": manifest.duplicate_transactions,
        "late_transactions": manifest.late_transactions,
        "distinct_txn_ids": PARAMS["rows"],
    }
    assert all(n > 0 for n in (manifest.duplicate_transactions, manifest.late_transactions,
                               sum(manifest.malformed_transactions.values())))
    lines.unpersist()


def test_one_csv_per_day_with_the_header_first_and_lines_in_event_time_order(
        landing: Path) -> None:
    files = sorted((landing / "transactions").iterdir())
    assert [f.name for f in files] == [f"transactions_2026-01-{d:02d}.csv" for d in range(1, 11)]
    for file in files:
        rows = file.read_text().splitlines()
        assert rows[0] == HEADER
        parsed = pd.to_datetime(pd.Series([r.split(",")[5] for r in rows[1:]]), utc=True,
                                format="ISO8601", errors="coerce").dropna()
        assert parsed.is_monotonic_increasing, file.name


def test_fraud_labels_are_about_two_percent_and_chargebacks_carry_each_exactly_once(
        spark: SparkSession, landing: Path, manifest: DemoManifest) -> None:
    labels = pd.read_parquet(landing / "truth" / "labels.parquet")
    assert len(labels) == PARAMS["rows"] + manifest.card_event_lines
    assert labels["txn_id"].is_unique and labels["txn_id"].is_monotonic_increasing
    in_batch = labels[labels["txn_id"] <= f"T{PARAMS['rows'] - 1:010d}"]
    assert int(in_batch["is_fraud"].sum()) == manifest.frauds
    assert 0.01 <= manifest.frauds / PARAMS["rows"] <= 0.035
    chargebacks = _lines(spark, landing / "chargebacks").select(
        "file_day", F.get_json_object("value", "$.txn_id").alias("txn_id"),
        F.get_json_object("value", "$.reported_at_ms").cast("long").alias("reported_at_ms"))
    intact = chargebacks.where(F.col("txn_id").isNotNull())
    assert chargebacks.count() == manifest.chargeback_lines
    assert chargebacks.count() - intact.count() == manifest.malformed_chargebacks
    charged = {r["txn_id"] for r in intact.select("txn_id").collect()}
    assert intact.count() == len(charged)
    assert charged == set(in_batch.loc[in_batch["is_fraud"], "txn_id"])
    report_day = F.to_date(F.timestamp_millis("reported_at_ms")).cast("string")
    assert intact.where(report_day != F.col("file_day")).count() == 0


def test_chargebacks_arrive_two_to_thirty_days_after_the_transaction(
        spark: SparkSession, landing: Path) -> None:
    events = (_transactions(spark, landing).where(F.col("event_day").isNotNull())
              .select("txn_id", F.col("event_day").cast("date").alias("event_day")).distinct())
    reports = (_lines(spark, landing / "chargebacks")
               .select(F.get_json_object("value", "$.txn_id").alias("txn_id"),
                       F.col("file_day").cast("date").alias("report_day"))
               .where(F.col("txn_id").isNotNull()))
    delays = (reports.join(events, on="txn_id", how="inner")
              .select(F.datediff("report_day", "event_day").alias("delay")))
    bounds = delays.agg(F.min("delay"), F.max("delay")).first()
    assert bounds[0] >= 2 and bounds[1] <= 31


def test_card_events_follow_the_last_day_in_ten_time_ordered_files(
        spark: SparkSession, landing: Path, manifest: DemoManifest) -> None:
    files = sorted((landing / "card_events").iterdir())
    assert [f.name for f in files] == [f"events_{i:04d}.json" for i in range(10)]
    assert manifest.card_event_files == 10
    events = spark.read.json(str(landing / "card_events")).select(
        F.col("_metadata.file_name").alias("file"), F.to_timestamp("event_time").alias("ts"))
    assert events.count() == manifest.card_event_lines
    span = events.agg(F.min("ts").cast("string"), F.max("ts").cast("string")).first()
    assert span[0] >= "2026-01-11" and span[1] < "2026-01-18"
    last_per_file = events.groupBy("file").agg(F.max("ts").alias("ts")).orderBy("file")
    ends = [r["ts"] for r in last_per_file.collect()]
    assert ends == sorted(ends)


def test_every_transaction_key_exists_in_the_dimensions(
        spark: SparkSession, landing: Path) -> None:
    lines = _transactions(spark, landing).where(F.col("n_fields") == 11)
    customers = pd.read_sql("SELECT customer_id FROM customers",
                            sqlite3.connect(landing / "customers.db"))
    merchants = pd.read_parquet(landing / "merchants" / "merchants.parquet")
    used_customers = {int(r[0]) for r in lines.select("customer_id").distinct().collect()}
    used_merchants = {r[0] for r in lines.select("merchant_id").distinct().collect()}
    assert used_customers <= set(customers["customer_id"])
    assert used_merchants <= set(merchants["merchant_id"])


def test_customers_table_is_a_slowly_changing_dimension(
        landing: Path, manifest: DemoManifest) -> None:
    with sqlite3.connect(landing / "customers.db") as db:
        rows = pd.read_sql("SELECT * FROM customers ORDER BY customer_id, valid_from", db)
    versions = rows.groupby("customer_id").size()
    assert (len(versions), len(rows)) == (manifest.customers, manifest.customer_versions)
    assert set(versions) == {1, 2}
    first = rows.groupby("customer_id").head(1)
    second = rows[rows.duplicated("customer_id")]
    assert (first["valid_from"] < "2026-01-01 00:00:00").all()
    assert second["valid_from"].between("2026-01-01", "2026-01-11").all()
    assert (rows["updated_at"] == rows["valid_from"]).all()
    assert rows["valid_from"].str.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}").all()
    assert first["email"].is_unique and first["phone"].is_unique
    changed = rows.drop_duplicates(["customer_id", "home_country", "credit_limit"])
    assert len(changed) == len(rows)  # each new version changes country or credit limit


def test_merchants_have_versions_with_category_changes(
        landing: Path, manifest: DemoManifest) -> None:
    merchants = pd.read_parquet(landing / "merchants" / "merchants.parquet")
    assert list(merchants.columns) == ["merchant_id", "name", "category", "country",
                                       "valid_from"]
    assert str(merchants["valid_from"].dtype) == "datetime64[us, UTC]"
    assert merchants["merchant_id"].str.fullmatch(r"M\d{6}").all()
    assert merchants["merchant_id"].nunique() == manifest.merchants
    assert len(merchants) == manifest.merchant_versions
    assert not merchants.duplicated(["merchant_id", "category"]).any()


def test_shift_drifts_only_the_live_card_events(
        spark: SparkSession, landing: Path, tmp_path: Path) -> None:
    shifted = generate_demo_data(spark, landing_dir=str(tmp_path), **{**PARAMS, "shift": 0.5})
    assert shifted.shift == 0.5
    for batch in ("transactions", "chargebacks"):
        assert _files(tmp_path / batch) == _files(landing / batch)

    def live(root: Path) -> pd.DataFrame:
        events = pd.concat(pd.read_json(f, lines=True)
                           for f in sorted((root / "card_events").iterdir()))
        return events.assign(abroad=events["country"].isin(["BR", "IN", "NG", "TH", "AE", "MX"]))

    before, after = live(landing), live(tmp_path)
    assert list(after["event_id"].sort_values()) == list(before["event_id"].sort_values())
    assert after["amount"].median() > 1.3 * before["amount"].median()
    assert after["abroad"].mean() > before["abroad"].mean()
