"""The features step: gold feature tables, then the audited point-in-time training set."""

from __future__ import annotations

from pyspark.sql import SparkSession

from lakeboost.config import LakeboostConfig
from lakeboost.features.build import build_features
from lakeboost.features.training_set import (
    TRAINING_SET,
    build_training_set,
    stored_training_set,
    write_training_set,
)
from lakeboost.io.catalog import TableCatalog
from lakeboost.logs import StepSummary


def features_step(spark: SparkSession, config: LakeboostConfig, names: list[str] | None = None, *,
                  full_rebuild: bool = False) -> StepSummary:
    summary = build_features(spark, config, names, full_rebuild=full_rebuild)
    if config.gold.training_set is not None:
        catalog = TableCatalog(spark, config.storage)
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
                summary.versions[TRAINING_SET] = version
    return summary
