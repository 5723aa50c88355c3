"""Promote the challenger to champion if it wins on a pinned snapshot, or roll the champion back."""

from __future__ import annotations

import argparse
import sys

from lakeboost.config import LakeboostConfig
from lakeboost.logs import StepSummary
from lakeboost.pipeline import run_step
from lakeboost.runtime import run_job
from pyspark.sql import SparkSession


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rollback", action="store_true", help="move champion back to the previous champion")
    parser.add_argument("--reason", default="", help="why (recorded with the rollback)")


def promote(spark: SparkSession, config: LakeboostConfig, args: argparse.Namespace) -> StepSummary:
    return run_step(spark, config, "promote", rollback=args.rollback, reason=args.reason)


def main(argv: list[str] | None = None) -> int:
    return run_job("promote", __doc__ or "", promote, argv, add_arguments)


if __name__ == "__main__":
    sys.exit(main())
