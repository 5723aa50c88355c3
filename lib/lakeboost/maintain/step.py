"""The maintain step: bronze personal-data retention, then OPTIMIZE (Z-ORDER) and VACUUM."""

from __future__ import annotations

from pydantic import Field

from lakeboost.logs import StepSummary
from lakeboost.steps import StepContext, StepOptions, step


class MaintainOptions(StepOptions):
    allow_unsafe_retention: bool = Field(False, description="allow VACUUM below 7 days (breaks time travel "
                                                            "and running streams)")


@step("maintain", options=MaintainOptions)
def maintain(ctx: StepContext[MaintainOptions]) -> StepSummary:
    """Blank expired personal data in bronze, then OPTIMIZE (Z-ORDER) and VACUUM the configured tables
    (gold.maintenance); not in the default pipeline, add it to pipeline.steps or schedule it."""
    from lakeboost.io.maintenance import maintain as maintain_tables

    return maintain_tables(ctx.catalog, ctx.config.gold.maintenance,
                           allow_unsafe=ctx.options.allow_unsafe_retention, silver=ctx.config.silver)
