"""The features step: gold feature tables, then the audited point-in-time training set."""

from __future__ import annotations

from pydantic import Field

from lakeboost.logs import StepSummary
from lakeboost.steps import StepContext, StepOptions, step


class FeaturesOptions(StepOptions):
    table: tuple[str, ...] = Field((), description="build only this feature table (repeatable; default: all)")
    full_rebuild: bool = Field(False, description="recompute every date partition (and the training set)")


@step("features", options=FeaturesOptions, requires={"dataset": "features are computed over dataset.events"})
def features(ctx: StepContext[FeaturesOptions]) -> StepSummary:
    """Build gold feature tables (incrementally by date partition) and the training set."""
    from lakeboost.features.build import build_features
    from lakeboost.features.training_set import (
        build_training_set,
        stored_training_set,
        write_training_set,
    )

    catalog, config, full_rebuild = ctx.catalog, ctx.config, ctx.options.full_rebuild
    summary = build_features(catalog, config, list(ctx.options.table) or None, full_rebuild=full_rebuild)
    if config.gold.training_set is not None:
        dataset = config.require_dataset
        stored = None if full_rebuild else stored_training_set(catalog, config.gold.training_set, dataset)
        if stored is not None:  # inputs and config unchanged: the table stays at its version
            summary.details["training_set"] = {**stored.lineage(), "rebuilt": False}
        else:
            training = build_training_set(catalog, config.gold.training_set, dataset)
            try:
                version = write_training_set(catalog, training)
            finally:
                training.df.unpersist()
            summary.details["training_set"] = {**training.lineage(), "rebuilt": True}
            if version is not None:
                summary.versions[catalog.tables.training_set] = version
    return summary
