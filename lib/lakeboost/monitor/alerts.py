"""Alerts: one row per breach in the alerts table, and the configured hooks called for new ones.

An alert is keyed by (kind, table, window, subject): re-running the monitor over the same
data finds the alert already recorded and neither writes nor sends it again. A failing hook
is logged and reported in the run summary; it never hides the alert row (which is the record).
"""

from __future__ import annotations

import json
import logging
import subprocess
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from pyspark.sql import functions as F

from lakeboost.config.monitoring import AlertHook
from lakeboost.io.catalog import TableCatalog

log = logging.getLogger(__name__)
ALERT_KEYS = ("kind", "table", "window_start", "subject")
ALERT_SCHEMA = ("kind string, table string, window_start timestamp, subject string, value double, "
                "threshold double, message string, model_version bigint")


@dataclass(frozen=True)
class Alert:
    kind: str  # data_drift | prediction_drift | performance_decay | data_quality
    table: str
    window_start: object  # datetime, or None for run-level alerts (data quality)
    subject: str
    value: float
    threshold: float
    message: str
    model_version: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str, sort_keys=True)


def record_alerts(catalog: TableCatalog, alerts: Sequence[Alert], table: str, *, run_id: str) -> list[Alert]:
    """Insert alerts not recorded before; return those (the ones to send)."""
    if catalog.exists(table):
        seen = {tuple(r) for r in catalog.read(table).select(*ALERT_KEYS).collect()}  # alerts are few
        alerts = [a for a in alerts if (a.kind, a.table, a.window_start, a.subject) not in seen]
    if alerts:
        rows = catalog.spark.createDataFrame([tuple(asdict(a).values()) for a in alerts], ALERT_SCHEMA)
        catalog.write(rows.withColumn("monitor_run_id", F.lit(run_id)).withColumn("raised_at", F.current_timestamp()),
                      table)
    return list(alerts)


def send_alerts(alerts: Sequence[Alert], hooks: Sequence[AlertHook]) -> list[str]:
    """Call every hook for every alert; returns the failures (also logged)."""
    failures = []
    for alert in alerts:
        for hook in hooks:
            try:
                _call(hook, alert)
            except Exception as exc:  # a broken hook must not stop the others or the run
                failure = f"{hook.kind} hook failed for {alert.kind} {alert.subject}: {str(exc).splitlines()[0]}"
                log.error(failure)
                failures.append(failure)
    return failures


def _call(hook: AlertHook, alert: Alert) -> None:
    if hook.kind == "log":
        log.warning("ALERT %s on %s window %s: %s", alert.kind, alert.table, alert.window_start, alert.message)
    elif hook.kind == "webhook":
        assert hook.url is not None  # validated in config
        request = urllib.request.Request(hook.url, data=alert.to_json().encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=hook.timeout_seconds) as response:  # noqa: S310 (configured URL)
            if response.status >= 300:
                raise RuntimeError(f"HTTP {response.status} from the webhook")
    else:
        subprocess.run(list(hook.command), input=alert.to_json(), text=True, check=True,
                       timeout=hook.timeout_seconds, capture_output=True)
