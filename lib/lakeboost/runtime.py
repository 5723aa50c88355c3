"""What every entry point shares: the common options, config, logging, session, exit codes."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession

from lakeboost.config import LakeboostConfig, load_config
from lakeboost.errors import LakeboostError
from lakeboost.logs import (
    SUMMARY_LOGGER,
    StepSummary,
    configure_logging,
    log_repeats,
    log_summary,
    write_summary,
)
from lakeboost.progress import set_detail, spark_stage
from lakeboost.spark import build_spark
from lakeboost.spark.fs import write_text

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
            check: Callable[[LakeboostConfig], None] | None = None, summary_json: str | None = None,
            log_json: bool = False) -> int:
    """Load the config, `check` it (before Spark starts), run `body`, keep its summary; return an exit code.

    After a successful run its summary (JSON) is written to `summary_json` when given, else to the
    storage root's `_runs/<job>-<UTC time>.json`; with `log_json` it is also logged as one
    `lakeboost.summary` line. The last lines printed are the human summary (`pipeline.closing_lines`).
    A LakeboostError is logged as one line and its class's exit code returned (ConfigError 2,
    ConcurrentWriteError 13, ...).
    """
    from lakeboost.pipeline import closing_lines

    configure_logging("INFO", log_json=log_json)
    started = time.monotonic()
    try:
        config = common.load()
        if check is not None:
            check(config)
        configure_logging(config.logging.level)
        spark = build_spark(config.spark, app_name=f"lakeboost-{job}")
        show_spark_stages(spark)
        summary = body(spark, config)
    except LakeboostError as exc:
        log_repeats()
        log.error("%s failed: %s", job, exc)
        return exc.exit_code
    summary.step = job
    summary.seconds = round(time.monotonic() - started, 2)
    log_summary(summary)
    written = keep_summary(spark, config, summary, summary_json)
    log_repeats()
    for line in closing_lines(summary, config, written):
        log.info("%s", line)
    return 0


def show_spark_stages(spark: SparkSession) -> None:
    """On a terminal, the progress line also shows the Spark stage running (classic sessions only)."""
    try:
        set_detail(spark_stage(spark))
    except Exception:  # noqa: BLE001 - Spark Connect has no SparkContext: no stage shown
        set_detail(None)


def run_file(config: LakeboostConfig, job: str, now: dt.datetime | None = None) -> str:
    """Where a run's summary goes by default: `<storage.root>/_runs/<job>-<UTC time>.json`."""
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{config.storage.root.rstrip('/')}/_runs/{job}-{stamp}.json"


def keep_summary(spark: SparkSession, config: LakeboostConfig, summary: StepSummary,
                 path: str | None) -> str | None:
    """Write the summary to `path` (a local file) or the run file; the path written, None if it
    could not be (logged, with the summary as a JSON line so that it is not lost)."""
    if path is not None:
        return str(write_summary(summary, Path(path)))
    target = run_file(config, summary.step)
    try:
        write_text(spark, target, summary.to_json())
    except Exception as exc:  # noqa: BLE001 - the run succeeded; its summary still reaches the log
        log.warning("could not write the run's summary to %s (%s); it follows as a log line", target, exc)
        logging.getLogger(SUMMARY_LOGGER).info("%s", summary.to_json())
        return None
    return target
