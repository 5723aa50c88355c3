"""Declarative integrations: as-of joins with renames, lookups, derived SQL, and bad lookups."""

from __future__ import annotations

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
