"""Refine bronze into silver: conform, check contracts, protect PII, upsert, integrate."""

from __future__ import annotations

import argparse
import sys

from lakeboost.config import LakeboostConfig
from lakeboost.logs import StepSummary
from lakeboost.pipeline import run_step
from lakeboost.runtime import run_job
from pyspark.sql import SparkSession


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", action="append", default=None, help="refine only this silver table (repeatable)")
    parser.add_argument("--full-rebuild", action="store_true",
                        help="forget what was processed and rebuild the tables from all of bronze")


def refine(spark: SparkSession, config: LakeboostConfig, args: argparse.Namespace) -> StepSummary:
    return run_step(spark, config, "refine", tables=args.table, full_rebuild=args.full_rebuild)


def main(argv: list[str] | None = None) -> int:
    return run_job("refine", __doc__ or "", refine, argv, add_arguments)


if __name__ == "__main__":
    sys.exit(main())
