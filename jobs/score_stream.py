"""Score live events (bronze stream) with the champion model as they arrive; exactly once per event."""

from __future__ import annotations

import argparse
import sys

from lakeboost.config import LakeboostConfig
from lakeboost.logs import StepSummary
from lakeboost.pipeline import run_step
from lakeboost.runtime import run_job
from pyspark.sql import SparkSession


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--continuous", action="store_true",
                        help="keep running, one micro-batch per scoring.stream.interval (default: score "
                             "what has arrived, then stop)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="with --continuous: stop after this many seconds")


def score_stream(spark: SparkSession, config: LakeboostConfig, args: argparse.Namespace) -> StepSummary:
    return run_step(spark, config, "score_stream", continuous=args.continuous, timeout_seconds=args.timeout)


def main(argv: list[str] | None = None) -> int:
    return run_job("score_stream", __doc__ or "", score_stream, argv, add_arguments)


if __name__ == "__main__":
    sys.exit(main())
