"""Declarative integrations: as-of joins with renames, lookups, derived SQL, and bad lookups."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from chispa import assert_df_equality
from lakeboost.config.integration import IntegrationConfig
from lakeboost.config.model import StorageConfig
from lakeboost.errors import IntegrationError
from lakeboost.io import TableCatalog
from lakeboost.refine.integrate import integrate, integrate_step
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from tests.helpers import spark_jobs

SPEC = IntegrationConfig.model_validate({
    "base": "silver.visits", "key": ["site", "visit_no"], "time": "at",
    "as_of": [{"table": "silver.sites", "keys": {"site": "site_code"}, "time": "since",
               "columns": {"zone": "site_zone"}, "time_as": "_site_since"}],
    "lookups": [{"table": "silver.zone_rates", "keys": {"site_zone": "zone"}, "columns": {"rate": "zone_rate"}}],
    "derived": {"cost": "round(minutes * zone_rate, 1)", "day": "to_date(at)"},
    "drop": ["zone_rate"],
})


def tables(spark: SparkSession) -> dict:
    visits = spark.createDataFrame([
        ("A", 1, "2026-01-01 10:00:00", 10.0), ("A", 2, "2026-01-05 10:00:00", 10.0),
        ("B", 1, "2026-01-02 10:00:00", 5.0), ("C", 1, "2026-01-02 10:00:00", 1.0),  # C: no site row
    ], "site string, visit_no int, at string, minutes double").withColumn("at", F.to_timestamp("at"))
    sites = spark.createDataFrame([
        ("A", "2025-12-01 00:00:00", "z1"), ("A", "2026-01-03 00:00:00", "z2"), ("B", "2025-12-01 00:00:00", "z9"),
    ], "site_code string, since string, zone string").withColumn("since", F.to_timestamp("since"))
    rates = spark.createDataFrame([("z1", 1.5), ("z2", 2.0)], "zone string, rate double")  # z9: no rate
    return {"silver.visits": visits, "silver.sites": sites, "silver.zone_rates": rates}


def test_integration_joins_as_of_looks_up_derives_and_keeps_every_base_row_once(spark: SparkSession) -> None:
    inputs = tables(spark)

    out = integrate(inputs["silver.visits"], SPEC, inputs)

    expected = spark.createDataFrame([
        ("A", 1, 10.0, "z1", 15.0), ("A", 2, 10.0, "z2", 20.0), ("B", 1, 5.0, "z9", None), ("C", 1, 1.0, None, None),
    ], "site string, visit_no int, minutes double, site_zone string, cost double")
    assert out.columns == ["site", "visit_no", "at", "minutes", "site_zone", "cost", "day"]  # `_site_since` is private
    assert_df_equality(out.select(*expected.columns), expected, ignore_row_order=True, ignore_nullable=True)


def test_a_lookup_whose_key_repeats_is_refused_naming_the_table(spark: SparkSession, tmp_path: Path) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    inputs = tables(spark)
    repeated = spark.createDataFrame([("z1", 9.0)], "zone string, rate double")
    inputs["silver.zone_rates"] = inputs["silver.zone_rates"].union(repeated)
    for name, df in inputs.items():
        catalog.write(df, name)
    with pytest.raises(IntegrationError, match=r"lookups: silver.zone_rates has 1 repeated key\(s\) on \['zone'\]"):
        integrate_step(catalog, "visits_integrated", SPEC)
    assert not catalog.exists("silver.visits_integrated")


def test_an_integration_whose_inputs_and_spec_are_unchanged_runs_no_job(spark: SparkSession, tmp_path: Path) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    for name, df in tables(spark).items():
        catalog.write(df, name)
    target = "silver.visits_integrated"
    first = integrate_step(catalog, "visits_integrated", SPEC)
    assert first.version == 0 and catalog.read(target).count() == 4

    def jobs_during(call) -> tuple[object, int]:
        return spark_jobs(spark, call)

    # Unchanged: the table's last commit records this spec and these input versions.
    again, jobs = jobs_during(lambda: integrate_step(catalog, "visits_integrated", SPEC))
    assert (again.version, jobs, catalog.version(target)) == (None, 0, 0)

    # A new base row: built again, and only that row is written.
    catalog.write(spark.createDataFrame([("B", 2, "2026-01-06 10:00:00", 2.0)],
                                        "site string, visit_no int, at string, minutes double")
                  .withColumn("at", F.to_timestamp("at")), "silver.visits")
    grown, jobs = jobs_during(lambda: integrate_step(catalog, "visits_integrated", SPEC))
    assert grown.version == 1 and grown.rows_written == 1 and jobs > 0
    assert catalog.read(target).filter("site = 'B' AND visit_no = 2").select("site_zone").first()[0] == "z9"

    # A full rebuild: built again, and no row changed (the marker is already there).
    _, jobs = jobs_during(lambda: integrate_step(catalog, "visits_integrated", SPEC, full_rebuild=True))
    assert jobs > 0 and catalog.version(target) == 1

    # The same inputs under another spec: rebuilt in full (an overwrite), then nothing to do.
    respec = SPEC.model_copy(update={"derived": {**SPEC.derived, "cost": "round(minutes * zone_rate, 2)"}})
    rebuilt, jobs = jobs_during(lambda: integrate_step(catalog, "visits_integrated", respec))
    assert jobs > 0 and (rebuilt.version, rebuilt.operation, rebuilt.rows_written) == (2, "WRITE", 5)
    _, jobs = jobs_during(lambda: integrate_step(catalog, "visits_integrated", respec))
    assert jobs == 0

    # A new input version that changes no row (a rate of a zone no site has): the MERGE commits
    # nothing, and a table property's commit records the marker, so the next run computes nothing.
    catalog.write(spark.createDataFrame([("z7", 3.0)], "zone string, rate double"), "silver.zone_rates")
    unchanged_rows, jobs = jobs_during(lambda: integrate_step(catalog, "visits_integrated", respec))
    assert jobs > 0 and unchanged_rows.version is None and catalog.version(target) == 3
    assert catalog.last_commit(target).operation == "SET TBLPROPERTIES" and catalog.read(target).count() == 5
    _, jobs = jobs_during(lambda: integrate_step(catalog, "visits_integrated", respec))
    assert jobs == 0


def test_an_integration_whose_spec_changed_is_rebuilt_in_full_not_merged(spark: SparkSession, tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    inputs = tables(spark)
    for name, df in inputs.items():
        catalog.write(df, name)
    target = "silver.visits_integrated"
    integrate_step(catalog, "visits_integrated", SPEC)
    # A commit that is not the integration's (maintenance): the marker is found in the history.
    catalog.set_properties(target, {"delta.logRetentionDuration": "interval 60 days"})
    assert integrate_step(catalog, "visits_integrated", SPEC).version is None  # merged: no row changed

    # `day` is no longer derived: a MERGE would keep the column (and its values) in the table.
    lean = SPEC.model_copy(update={"derived": {"cost": "round(minutes * zone_rate, 1)"}})
    with caplog.at_level(logging.INFO, logger="lakeboost.refine.integrate"):
        result = integrate_step(catalog, "visits_integrated", lean)

    assert result.operation == "WRITE"
    assert "the spec of silver.integrations.visits_integrated changed since its last build" in caplog.text
    assert_df_equality(catalog.read(target).drop("_row_hash"), integrate(inputs["silver.visits"], lean, inputs),
                       ignore_row_order=True, ignore_nullable=True)
