"""Score gold features with a registered model (default: the champion) into gold.predictions."""

from __future__ import annotations

import argparse
import sys

from lakeboost.config import LakeboostConfig
from lakeboost.logs import StepSummary
from lakeboost.pipeline import run_step
from lakeboost.runtime import run_job
from pyspark.sql import SparkSession


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="champion", help="alias or version number (default: champion)")
    parser.add_argument("--date", action="append", default=None,
                        help="date partition (dataset.date_column) to score (repeatable); default: the latest")


def score(spark: SparkSession, config: LakeboostConfig, args: argparse.Namespace) -> StepSummary:
    return run_step(spark, config, "score", ref=args.model, dates=args.date)


def main(argv: list[str] | None = None) -> int:
    return run_job("score", __doc__ or "", score, argv, add_arguments)


if __name__ == "__main__":
    sys.exit(main())
