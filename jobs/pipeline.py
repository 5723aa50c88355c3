"""Run the lakeboost pipeline (all steps, or a selection) as one job."""

from __future__ import annotations

import argparse
import sys

from lakeboost.config import LakeboostConfig
from lakeboost.logs import StepSummary
from lakeboost.pipeline import STEPS, run_pipeline, select_steps
from lakeboost.runtime import run_job
from pyspark.sql import SparkSession


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="start", choices=list(STEPS), help="first step to run")
    parser.add_argument("--to", dest="stop", choices=list(STEPS), help="last step to run")
    parser.add_argument("--only", action="append", default=[], choices=list(STEPS),
                        help="run only this step (repeatable)")


def pipeline(spark: SparkSession, config: LakeboostConfig, args: argparse.Namespace) -> StepSummary:
    return run_pipeline(spark, config, select_steps(args.only, args.start, args.stop))


def main(argv: list[str] | None = None) -> int:
    return run_job("pipeline", __doc__ or "", pipeline, argv, add_arguments)


if __name__ == "__main__":
    sys.exit(main())
