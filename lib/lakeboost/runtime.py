"""What every job entry point shares: arguments, config, logging, session, exit codes."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Sequence

from pyspark.sql import SparkSession

from lakeboost.config import LakeboostConfig, load_config
from lakeboost.errors import LakeboostError
from lakeboost.logs import StepSummary, configure_logging, log_summary
from lakeboost.spark import build_spark

log = logging.getLogger("lakeboost.job")
JobBody = Callable[[SparkSession, LakeboostConfig, argparse.Namespace], StepSummary]


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--env", default="local", help="config overlay under conf/ (local, cluster)")
    parser.add_argument("--conf-dir", default=None, help="config directory (default: the repo's conf/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set training.model.n_estimators=200 (repeatable)")
    return parser


def run_job(step: str, description: str, body: JobBody, argv: Sequence[str] | None = None,
            add_arguments: Callable[[argparse.ArgumentParser], None] | None = None) -> int:
    """Parse args, load config (before Spark starts), run `body`, log its summary; return an exit code."""
    parser = base_parser(description)
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    configure_logging("INFO")
    started = time.monotonic()
    try:
        config = load_config(args.env, args.overrides, args.conf_dir)
        configure_logging(config.logging.level)
        spark = build_spark(config.spark, app_name=f"lakeboost-{step}")
        summary = body(spark, config, args)
    except LakeboostError as exc:
        log.error("%s failed: %s", step, exc)
        return exc.exit_code
    summary.step = step
    summary.seconds = round(time.monotonic() - started, 2)
    log_summary(summary)
    return 0
