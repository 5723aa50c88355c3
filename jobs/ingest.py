"""Ingest configured sources into bronze Delta tables (files as streams, JDBC as snapshots)."""

from __future__ import annotations

import argparse
import sys

from lakeboost.config import LakeboostConfig
from lakeboost.logs import StepSummary
from lakeboost.pipeline import run_step
from lakeboost.runtime import run_job
from pyspark.sql import SparkSession


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", action="append", default=None,
                        help="ingest only this source (repeatable; default: all)")
    parser.add_argument("--continuous", action="store_true",
                        help="keep file streams running (processing-time trigger)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="with --continuous: stop after this many seconds")


def ingest(spark: SparkSession, config: LakeboostConfig, args: argparse.Namespace) -> StepSummary:
    return run_step(spark, config, "ingest", names=args.source, continuous=args.continuous,
                    timeout_seconds=args.timeout)


def main(argv: list[str] | None = None) -> int:
    return run_job("ingest", __doc__ or "", ingest, argv, add_arguments)


if __name__ == "__main__":
    sys.exit(main())
