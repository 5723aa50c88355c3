"""Generate the deterministic card-fraud demo data into storage.landing (idempotent)."""

from __future__ import annotations

import argparse
import sys

from lakeboost.config import LakeboostConfig
from lakeboost.demo.job import generate_step
from lakeboost.logs import StepSummary
from lakeboost.runtime import run_job
from pyspark.sql import SparkSession


def generate(spark: SparkSession, config: LakeboostConfig, args: argparse.Namespace) -> StepSummary:
    return generate_step(spark, config)


def main(argv: list[str] | None = None) -> int:
    return run_job("generate", __doc__ or "", generate, argv)


if __name__ == "__main__":
    sys.exit(main())
