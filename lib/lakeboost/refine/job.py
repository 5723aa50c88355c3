"""The refine step: silver tables from bronze, then the integrated transactions."""

from __future__ import annotations

from pyspark.sql import SparkSession

from lakeboost.config import LakeboostConfig
from lakeboost.io.catalog import TableCatalog
from lakeboost.logs import StepSummary
from lakeboost.refine.integrate import ENRICHED, integrate_step
from lakeboost.refine.silver import refine_tables

INTEGRATION_INPUTS = ("transactions", "customers", "merchants")


def refine_step(spark: SparkSession, config: LakeboostConfig, tables: list[str] | None = None, *,
                full_rebuild: bool = False) -> StepSummary:
    summary = refine_tables(spark, config, tables, full_rebuild=full_rebuild)
    if config.silver.integrate and all(t in config.silver.tables for t in INTEGRATION_INPUTS):
        result = integrate_step(TableCatalog(spark, config.storage), fx=config.silver.fx)
        summary.details["integrated"] = {"version": result.version, "rows_changed": result.rows_written}
        if result.version is not None:
            summary.versions[ENRICHED] = result.version
    return summary
