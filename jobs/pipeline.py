"""Run the lakeboost pipeline (all steps, or a selection) as one job."""

from __future__ import annotations

import argparse
import sys

from lakeboost.config import LakeboostConfig
from lakeboost.logs import StepSummary
from lakeboost.pipeline import run_pipeline, select_steps
from lakeboost.runtime import run_job
from pyspark.sql import SparkSession


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Step names are checked against the config's pipeline.steps once it has loaded (an
    # application registers its own steps when its modules are imported).
    parser.add_argument("--from", dest="start", help="first step to run")
    parser.add_argument("--to", dest="stop", help="last step to run")
    parser.add_argument("--only", action="append", default=[], help="run only this step (repeatable)")


def pipeline(spark: SparkSession, config: LakeboostConfig, args: argparse.Namespace) -> StepSummary:
    return run_pipeline(spark, config, select_steps(config, args.only, args.start, args.stop))


def main(argv: list[str] | None = None) -> int:
    return run_job("pipeline", __doc__ or "", pipeline, argv, add_arguments)


if __name__ == "__main__":
    sys.exit(main())
