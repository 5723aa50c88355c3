"""Logging set-up (once per job) and the one machine-readable summary line per step."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

from lakeboost.borrowed import GATEWAY_LOGGER

SUMMARY_LOGGER = "lakeboost.summary"


def configure_logging(level: str = "INFO") -> None:
    """Configure root logging for a job; quiet the JVM gateway's chatter."""
    logging.basicConfig(
        level=level, stream=sys.stderr, force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger(GATEWAY_LOGGER).setLevel(logging.WARNING)


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
    logging.getLogger(SUMMARY_LOGGER).info("%s", summary.to_json())
