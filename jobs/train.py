"""Train the model on the gold training set (xgboost.spark), track it in MLflow, register it."""

from __future__ import annotations

import argparse
import sys

from lakeboost.config import LakeboostConfig
from lakeboost.logs import StepSummary
from lakeboost.pipeline import run_step
from lakeboost.runtime import run_job
from pyspark.sql import SparkSession


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--replay", metavar="RUN_ID", help="rebuild the run's training set by time travel and retrain")


def train(spark: SparkSession, config: LakeboostConfig, args: argparse.Namespace) -> StepSummary:
    return run_step(spark, config, "train", replay=args.replay)


def main(argv: list[str] | None = None) -> int:
    return run_job("train", __doc__ or "", train, argv, add_arguments)


if __name__ == "__main__":
    sys.exit(main())
