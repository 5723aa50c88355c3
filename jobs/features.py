"""Build gold feature tables (incrementally by date partition) and the training set."""

from __future__ import annotations

import argparse
import sys

from lakeboost.config import LakeboostConfig
from lakeboost.logs import StepSummary
from lakeboost.pipeline import run_step
from lakeboost.runtime import run_job
from pyspark.sql import SparkSession


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", action="append", default=None, help="build only this feature table")
    parser.add_argument("--full-rebuild", action="store_true", help="recompute every date partition")


def features(spark: SparkSession, config: LakeboostConfig, args: argparse.Namespace) -> StepSummary:
    return run_step(spark, config, "features", names=args.table, full_rebuild=args.full_rebuild)


def main(argv: list[str] | None = None) -> int:
    return run_job("features", __doc__ or "", features, argv, add_arguments)


if __name__ == "__main__":
    sys.exit(main())
