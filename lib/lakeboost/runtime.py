"""What every entry point shares: the common options, config, logging, session, exit codes."""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyspark.sql import SparkSession

from lakeboost.config import LakeboostConfig, load_config
from lakeboost.errors import LakeboostError
from lakeboost.logs import StepSummary, configure_logging, log_summary
from lakeboost.spark import build_spark

log = logging.getLogger("lakeboost.job")
JobBody = Callable[[SparkSession, LakeboostConfig, argparse.Namespace], StepSummary]


@dataclass(frozen=True)
class Common:
    """The options every command takes: which config (`--env`, `--conf-dir`) and `--set` overrides."""

    env: str = "local"
    conf_dir: str | None = None
    overrides: tuple[str, ...] = ()

    def load(self) -> LakeboostConfig:
        return load_config(self.env, self.overrides, self.conf_dir)


ENV_HELP = "config overlay under the config directory (local, cluster; local+kafka: local, then kafka)"
CONF_DIR_HELP = ("config directory; its relative paths resolve against it (default: $LAKEBOOST_CONF_DIR, "
                 "else the checkout's conf/, else the config packed in the wheel)")
SET_HELP = "override a config value, e.g. --set training.model.n_estimators=200 (repeatable)"


def base_parser(description: str, *, add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, add_help=add_help)
    parser.add_argument("--env", default="local", help=ENV_HELP)
    parser.add_argument("--conf-dir", default=None, help=CONF_DIR_HELP)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)
    return parser


def run_job(step: str, description: str, body: JobBody, argv: Sequence[str] | None = None,
            add_arguments: Callable[[argparse.ArgumentParser], None] | None = None) -> int:
    """Parse args, load config (before Spark starts), run `body`, log its summary; return an exit code."""
    parser = base_parser(description)
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    common = Common(args.env, args.conf_dir, tuple(args.overrides))
    return execute(step, common, lambda spark, config: body(spark, config, args))


def execute(job: str, common: Common, body: Callable[[SparkSession, LakeboostConfig], StepSummary], *,
            check: Callable[[LakeboostConfig], None] | None = None) -> int:
    """Load the config, `check` it (before Spark starts), run `body`, log its summary; return an exit code.

    A LakeboostError is logged as one line and its class's exit code returned (ConfigError 2,
    ConcurrentWriteError 13, ...).
    """
    configure_logging("INFO")
    started = time.monotonic()
    try:
        config = common.load()
        if check is not None:
            check(config)
        configure_logging(config.logging.level)
        spark = build_spark(config.spark, app_name=f"lakeboost-{job}")
        summary = body(spark, config)
    except LakeboostError as exc:
        log.error("%s failed: %s", job, exc)
        return exc.exit_code
    summary.step = job
    summary.seconds = round(time.monotonic() - started, 2)
    log_summary(summary)
    return 0
