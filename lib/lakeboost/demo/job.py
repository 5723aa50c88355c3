"""The demo generator as a pipeline step (sizes come from the `demo` config section)."""

from __future__ import annotations

from dataclasses import asdict

from pyspark.sql import SparkSession

from lakeboost.config import LakeboostConfig
from lakeboost.demo.generator import generate_demo_data
from lakeboost.logs import StepSummary


def generate_step(spark: SparkSession, config: LakeboostConfig) -> StepSummary:
    demo = config.demo
    manifest = generate_demo_data(
        spark, landing_dir=config.storage.landing, rows=demo.rows, seed=demo.seed,
        days=demo.days, start_date=demo.start_date, shift=demo.shift,
    )
    return StepSummary("generate", rows_written=manifest.transaction_lines, details=asdict(manifest))
