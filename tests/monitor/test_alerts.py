"""Alerts: recorded once, sent to every hook (log, webhook on loopback, command), failures reported."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from lakeboost.config import StorageConfig
from lakeboost.config.monitoring import AlertHook
from lakeboost.io import TableCatalog
from lakeboost.monitor.alerts import Alert, record_alerts, send_alerts
from pyspark.sql import SparkSession

ALERT = Alert("data_drift", "gold.stream_predictions", dt.datetime(2026, 3, 2), "*", 0.71, 0.2,
              "1 breach(es): amount_eur psi=0.710", 3)


@pytest.fixture()
def webhook():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/alerts", received
    server.shutdown()


def test_every_hook_gets_the_alert_and_a_failing_hook_is_reported(webhook, tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    url, received = webhook
    out = tmp_path / "alerts.jsonl"
    hooks = [AlertHook(), AlertHook(kind="webhook", url=url),
             AlertHook(kind="command", command=(sys.executable, "-c",
                                                f"import sys; open({str(out)!r}, 'a').write(sys.stdin.read())")),
             AlertHook(kind="command", command=(sys.executable, "-c", "raise SystemExit(3)"))]

    with caplog.at_level(logging.WARNING, logger="lakeboost.monitor.alerts"):
        failures = send_alerts([ALERT], hooks)

    assert received == [json.loads(ALERT.to_json())] and json.loads(out.read_text()) == received[0]
    assert received[0]["kind"] == "data_drift" and received[0]["value"] == 0.71
    assert len(failures) == 1 and "command hook failed for data_drift" in failures[0]
    assert any("ALERT data_drift on gold.stream_predictions" in r.getMessage() for r in caplog.records)


def test_an_alert_is_recorded_and_sent_once(spark: SparkSession, tmp_path: Path) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path / "lake")))
    other = Alert("performance_decay", "gold.predictions", dt.datetime(2026, 3, 1), "*", 0.1, 0.2, "decay", 3)

    first = record_alerts(catalog, [ALERT], "gold.alerts", run_id="r1")
    second = record_alerts(catalog, [ALERT, other], "gold.alerts", run_id="r2")
    third = record_alerts(catalog, [ALERT, other], "gold.alerts", run_id="r3")

    assert (first, second, third) == ([ALERT], [other], [])
    rows = catalog.read("gold.alerts").orderBy("kind").collect()
    assert [(r.kind, r.monitor_run_id) for r in rows] == [("data_drift", "r1"), ("performance_decay", "r2")]
    assert catalog.version("gold.alerts") == 1
