"""The refine step: silver tables from bronze, then the configured integrations in order."""

from __future__ import annotations

from pydantic import Field

from lakeboost.logs import StepSummary
from lakeboost.steps import StepContext, StepOptions, step


class RefineOptions(StepOptions):
    table: tuple[str, ...] = Field((), description="refine only this silver table (repeatable; default: all)")
    full_rebuild: bool = Field(False, description="forget what was processed and rebuild the tables from all "
                                                  "of bronze")


@step("refine", options=RefineOptions)
def refine(ctx: StepContext[RefineOptions]) -> StepSummary:
    """Refine bronze into silver: conform, check contracts, protect PII, upsert, integrate."""
    from lakeboost.refine.integrate import integrate_step, output_table
    from lakeboost.refine.silver import refine_tables

    full_rebuild = ctx.options.full_rebuild
    summary = refine_tables(ctx.catalog, ctx.config, list(ctx.options.table) or None, full_rebuild=full_rebuild)
    integrated = {}
    for name, spec in ctx.config.silver.integrations.items():
        result = integrate_step(ctx.catalog, name, spec, full_rebuild=full_rebuild)
        integrated[name] = {"table": output_table(name, spec), "version": result.version,
                            "rows_changed": result.rows_written}
        if result.version is not None:
            summary.versions[output_table(name, spec)] = result.version
    summary.details["integrated"] = integrated
    return summary
