"""The refine step: silver tables from bronze, then the configured integrations in order."""

from __future__ import annotations

from pyspark.sql import SparkSession

from lakeboost.config import LakeboostConfig
from lakeboost.io.catalog import TableCatalog
from lakeboost.logs import StepSummary
from lakeboost.refine.integrate import integrate_step, output_table
from lakeboost.refine.silver import refine_tables


def refine_step(spark: SparkSession, config: LakeboostConfig, tables: list[str] | None = None, *,
                full_rebuild: bool = False) -> StepSummary:
    summary = refine_tables(spark, config, tables, full_rebuild=full_rebuild)
    catalog = TableCatalog(spark, config.storage)
    integrated = {}
    for name, spec in config.silver.integrations.items():
        result = integrate_step(catalog, name, spec, full_rebuild=full_rebuild)
        integrated[name] = {"table": output_table(name, spec), "version": result.version,
                            "rows_changed": result.rows_written}
        if result.version is not None:
            summary.versions[output_table(name, spec)] = result.version
    summary.details["integrated"] = integrated
    return summary
