"""Bronze personal-data retention, then OPTIMIZE (Z-ORDER) and VACUUM the configured tables; unsafe
retention needs a loud flag."""

from __future__ import annotations

import argparse
import sys

from lakeboost.config import LakeboostConfig
from lakeboost.io.catalog import TableCatalog
from lakeboost.io.maintenance import maintain
from lakeboost.logs import StepSummary
from lakeboost.runtime import run_job
from pyspark.sql import SparkSession


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-unsafe-retention", action="store_true",
                        help="allow VACUUM below 7 days (breaks time travel and running streams)")


def maintenance(spark: SparkSession, config: LakeboostConfig, args: argparse.Namespace) -> StepSummary:
    return maintain(TableCatalog(spark, config.storage), config.gold.maintenance,
                    allow_unsafe=args.allow_unsafe_retention, silver=config.silver)


def main(argv: list[str] | None = None) -> int:
    return run_job("maintain", __doc__ or "", maintenance, argv, add_arguments)


if __name__ == "__main__":
    sys.exit(main())
