"""Logging set-up (once per job), the run's summary (one JSON object per step and run), and the
human-readable lines a run ends with.

What a person sees on the console: lakeboost's log lines (a progress line below them on a
terminal, `lakeboost.progress`), each line repeated word for word once, with the number of its repeats at the end, no
third-party progress bars, and last the human summary. The machine-readable summary (a 10 KB JSON
object for a pipeline run) goes to a file (`write_summary`), or, with `--log-json`, is also logged
as one `lakeboost.summary` line as it always was.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lakeboost import progress
from lakeboost.borrowed import GATEWAY_LOGGER

SUMMARY_LOGGER = "lakeboost.summary"
XGBOOST_SPARK_LOGGER = "XGBoost-PySpark"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Third-party progress bars off (MLflow's artifact downloads draw one per model load: 6 in a demo run).
QUIET_ENV = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "TQDM_DISABLE": "1"}
_options = {"log_json": False}


class ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr, with a terminal's progress line lifted before a record prints and drawn again after."""

    def emit(self, record: logging.LogRecord) -> None:
        progress.clear()
        super().emit(record)
        progress.redraw()


class RepeatFilter(logging.Filter):
    """A warning (or info line) repeated word for word (same logger, same text) prints once, and
    again only after `reprint_seconds` (a long-running stream still shows it is alive); its repeats
    are counted, and said in one line when the job ends (`log_repeats`). Errors always print."""

    def __init__(self, reprint_seconds: float = 600.0, remember: int = 10_000) -> None:
        super().__init__()
        self.reprint_seconds, self.remember = reprint_seconds, remember
        self.seen: dict[tuple[str, str], int] = {}
        self.printed: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR or record.name == SUMMARY_LOGGER:  # never drop a machine-read line
            return True
        key = (record.name, record.getMessage())
        if key not in self.seen and len(self.seen) >= self.remember:  # bounded, for a stream running for days
            self.forget()
        self.seen[key] = self.seen.get(key, 0) + 1
        if self.seen[key] > 1 and record.created - self.printed[key] < self.reprint_seconds:
            return False
        self.printed[key] = record.created
        return True

    def forget(self) -> None:
        self.seen.clear()
        self.printed.clear()

    def repeats(self) -> list[tuple[str, str, int]]:
        """(logger, message, times) of every line that came more than once."""
        return [(name, message, n) for (name, message), n in self.seen.items() if n > 1]


_repeats = RepeatFilter()


def configure_logging(level: str = "INFO", *, log_json: bool | None = None) -> None:
    """Configure root logging for a job; quiet the JVM gateway's chatter and third-party progress bars.
    `log_json`: also log each summary as a JSON line (`--log-json`); None keeps the earlier choice."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    if log_json is not None:
        _options["log_json"] = log_json
    _repeats.forget()  # a job's repeats are its own (a notebook or a test may run several in one process)
    handler = ConsoleHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(_repeats)
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.captureWarnings(True)  # Python warnings (deprecations) through the same filter
    logging.getLogger(GATEWAY_LOGGER).setLevel(logging.WARNING)
    # xgboost.spark's INFO lines (its parameters, "Do the inference on the CPUs" per scoring); its
    # workers take the driver's level for this logger.
    logging.getLogger(XGBOOST_SPARK_LOGGER).setLevel(logging.WARNING)


def log_repeats() -> None:
    """One line for each line that came more than once (printed once, when it first came)."""
    for name, message, times in _repeats.repeats():
        logging.getLogger(name).info("%r came %d times in all (printed once)", message[:160], times)
    _repeats.forget()


@dataclass
class StepSummary:
    """Counts for one step; `rows_read == rows_written + rows_quarantined + rows_skipped`."""

    step: str
    rows_read: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    rows_skipped: int = 0
    versions: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)
    # Steps the runner should run next (the monitor asking for a retrain); not logged.
    follow_up: tuple[str, ...] = ()

    def add(self, other: StepSummary) -> None:
        self.rows_read += other.rows_read
        self.rows_written += other.rows_written
        self.rows_quarantined += other.rows_quarantined
        self.rows_skipped += other.rows_skipped
        self.versions.update(other.versions)

    def to_json(self) -> str:
        fields = {k: v for k, v in asdict(self).items() if k != "follow_up"}
        return json.dumps(fields, sort_keys=True, default=str)


def log_summary(summary: StepSummary) -> None:
    """The summary as one JSON log line (`lakeboost.summary: {...}`), with `--log-json` only; a
    run's summaries always go to its summary file (`write_summary`)."""
    if _options["log_json"]:
        logging.getLogger(SUMMARY_LOGGER).info("%s", summary.to_json())


def write_summary(summary: StepSummary, path: str | Path) -> Path:
    """Write the summary as JSON to `path` (directories made), through a temporary file renamed
    into place: a reader sees all of it or none."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(summary.to_json())
    partial.replace(target)
    return target
