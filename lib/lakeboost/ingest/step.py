"""The ingest step: configured sources into bronze Delta tables (files as streams, JDBC as snapshots)."""

from __future__ import annotations

from pydantic import Field, PositiveFloat

from lakeboost.logs import StepSummary
from lakeboost.steps import StepContext, StepOptions, step


class IngestOptions(StepOptions):
    source: tuple[str, ...] = Field((), description="ingest only this source (repeatable; default: all)")
    continuous: bool = Field(False, description="keep file streams running (processing-time trigger)")
    timeout: PositiveFloat | None = Field(None, description="with --continuous: stop after this many seconds",
                                          json_schema_extra={"metavar": "SECONDS"})


@step("ingest", options=IngestOptions)
def ingest(ctx: StepContext[IngestOptions]) -> StepSummary:
    """Ingest configured sources into bronze Delta tables (files as streams, JDBC as snapshots)."""
    from lakeboost.ingest.bronze import ingest_sources

    opts = ctx.options
    return ingest_sources(ctx.catalog, ctx.config, list(opts.source) or None, continuous=opts.continuous,
                          timeout_seconds=opts.timeout)
