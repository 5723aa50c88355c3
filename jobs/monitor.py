"""Monitor the champion: feature and prediction drift, delayed-label performance and data-quality
trend per scoring window; alerts with hooks; an HTML report logged to MLflow."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from lakeboost.config import LakeboostConfig
from lakeboost.logs import StepSummary
from lakeboost.pipeline import run_step
from lakeboost.runtime import run_job
from pyspark.sql import SparkSession


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as-of", type=dt.datetime.fromisoformat, default=None,
                        help="judge labels as known at this UTC time (default: now), e.g. 2026-03-31T00:00")


def monitor(spark: SparkSession, config: LakeboostConfig, args: argparse.Namespace) -> StepSummary:
    return run_step(spark, config, "monitor", as_of=args.as_of)


def main(argv: list[str] | None = None) -> int:
    return run_job("monitor", __doc__ or "", monitor, argv, add_arguments)


if __name__ == "__main__":
    sys.exit(main())
