"""Alerts: recorded once, delivered at least once to every hook (log, webhook on loopback,
command), re-sent by later runs until each hook accepted them, failures reported."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from pathlib import Path

import pytest
from lakeboost.config import StorageConfig
from lakeboost.config.monitoring import AlertHook
from lakeboost.io import TableCatalog
from lakeboost.monitor.alerts import Alert, deliver_alerts, hook_id, record_alerts, request_retrains
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from tests.monitor.webhook import Receiver

ALERT = Alert("data_drift", "gold.stream_predictions", dt.datetime(2026, 3, 2), "*", 0.71, 0.2,
              "1 breach(es): amount_eur psi=0.710", 3)
OTHER = Alert("performance_decay", "gold.predictions", dt.datetime(2026, 3, 1), "*", 0.1, 0.2, "decay", 3)
QUALITY = Alert("data_quality", "silver", None, "transactions:amount_positive", 0.05, 0.01, "5% failed")
REFUSED = "webhook hook failed for data_drift *: HTTP Error 500: Internal Server Error"
STATE = ["kind", "delivery", "delivered_to", "attempts", "last_error", "retrain"]


@pytest.fixture()
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture()
def catalog(spark: SparkSession, tmp_path: Path) -> TableCatalog:
    return TableCatalog(spark, StorageConfig(root=str(tmp_path / "lake")))


def _state(catalog: TableCatalog, spark: SparkSession, rows: list[tuple]) -> None:
    """The alerts table's delivery state equals `rows` (kind, delivery, delivered_to, attempts,
    last_error, retrain)."""
    actual = catalog.read("gold.alerts").select(*STATE)
    expected = spark.createDataFrame(rows, "kind string, delivery string, delivered_to array<string>, attempts int, "
                                           "last_error string, retrain string")
    assertDataFrameEqual(actual, expected)


def test_every_hook_gets_the_alert_with_its_id_and_a_failing_hook_is_reported(receiver: Receiver, catalog,
                                                                             tmp_path: Path,
                                                                             caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "alerts.jsonl"
    hooks = [AlertHook(), AlertHook(kind="webhook", url=receiver.url),
             AlertHook(kind="command", command=(sys.executable, "-c",
                                                f"import sys; open({str(out)!r}, 'a').write(sys.stdin.read())")),
             AlertHook(kind="command", command=(sys.executable, "-c", "raise SystemExit(3)"))]
    record_alerts(catalog, [ALERT], "gold.alerts", run_id="r1")

    with caplog.at_level(logging.WARNING, logger="lakeboost.monitor.alerts"):
        delivery = deliver_alerts(catalog, "gold.alerts", hooks)

    assert receiver.received == [(json.loads(ALERT.to_json()), ALERT.alert_id)]
    assert json.loads(out.read_text()) == receiver.payloads()[0]
    assert receiver.payloads()[0]["kind"] == "data_drift" and receiver.payloads()[0]["value"] == 0.71
    assert len(receiver.payloads()[0]["alert_id"]) == 32
    assert (delivery.tried, delivery.delivered, delivery.pending) == (1, 0, 1)
    assert len(delivery.failures) == 1 and "command hook failed for data_drift" in delivery.failures[0]
    assert any("ALERT data_drift on gold.stream_predictions" in r.getMessage() for r in caplog.records)


def test_an_alert_is_recorded_once_with_an_id_stable_across_runs(catalog) -> None:
    first = record_alerts(catalog, [ALERT], "gold.alerts", run_id="r1")
    second = record_alerts(catalog, [ALERT, OTHER], "gold.alerts", run_id="r2")
    third = record_alerts(catalog, [ALERT, OTHER], "gold.alerts", run_id="r3")

    assert (first, second, third) == ([ALERT], [OTHER], [])
    rows = catalog.read("gold.alerts").orderBy("kind").collect()
    assert [(r.kind, r.monitor_run_id, r.alert_id) for r in rows] == [("data_drift", "r1", ALERT.alert_id),
                                                                      ("performance_decay", "r2", OTHER.alert_id)]
    assert catalog.version("gold.alerts") == 1
    # The id is the key's digest: another message or value (a later run's numbers) keeps it.
    assert Alert(*[*ALERT.__dict__.values()][:4], 0.9, 0.2, "other words", 3).alert_id == ALERT.alert_id
    assert len({ALERT.alert_id, OTHER.alert_id, QUALITY.alert_id}) == 3


def test_after_a_promotion_the_new_champions_breach_of_an_alerted_window_is_a_new_alert(catalog) -> None:
    """The same window breached by the old champion (v3) and, after a promotion, by the new one
    (v4): two models, two alerts, both sent; a rerun of either records nothing."""
    promoted = Alert(*[*ALERT.__dict__.values()][:7], 4)
    assert record_alerts(catalog, [ALERT], "gold.alerts", run_id="before") == [ALERT]
    assert record_alerts(catalog, [promoted], "gold.alerts", run_id="after") == [promoted]
    assert record_alerts(catalog, [ALERT, promoted], "gold.alerts", run_id="again") == []
    rows = catalog.read("gold.alerts").orderBy("model_version").collect()
    assert [(r.model_version, r.monitor_run_id, r.delivery) for r in rows] == [(3, "before", "pending"),
                                                                               (4, "after", "pending")]
    assert promoted.alert_id != ALERT.alert_id


def test_a_webhook_answering_500_gets_the_alert_again_next_run_and_once_delivered_never_again(
        receiver: Receiver, catalog, spark: SparkSession, caplog: pytest.LogCaptureFixture) -> None:
    receiver.answers = lambda n: 500 if n == 1 else 204
    hooks = [AlertHook(), AlertHook(kind="webhook", url=receiver.url)]
    record_alerts(catalog, [ALERT], "gold.alerts", run_id="r1")

    with caplog.at_level(logging.WARNING, logger="lakeboost.monitor.alerts"):
        first = deliver_alerts(catalog, "gold.alerts", hooks)
        _state(catalog, spark, [("data_drift", "pending", ["log"], 1, REFUSED, None)])
        second = deliver_alerts(catalog, "gold.alerts", hooks)
        third = deliver_alerts(catalog, "gold.alerts", hooks)

    # The same payload and id twice: refused, then accepted; never a third time.
    assert receiver.received == [(json.loads(ALERT.to_json()), ALERT.alert_id)] * 2
    assert (first.pending, second.delivered, third.tried) == (1, 1, 0)
    assert "HTTP Error 500" in first.failures[0] and second.failures == ()
    # The log hook accepted it the first time and was not called again.
    assert sum("ALERT data_drift" in r.getMessage() for r in caplog.records) == 1
    _state(catalog, spark, [("data_drift", "delivered", ["log", hook_id(hooks[1])], 2, REFUSED, None)])
    assert catalog.read("gold.alerts").filter("delivered_at IS NULL").isEmpty()


def test_a_webhook_that_never_answers_times_out_once_per_run_and_gets_every_alert_later(
        receiver: Receiver, catalog, spark: SparkSession, caplog: pytest.LogCaptureFixture) -> None:
    receiver.answers = lambda n: None if n == 1 else 204
    hooks = [AlertHook(kind="webhook", url=receiver.url, timeout_seconds=0.5)]
    record_alerts(catalog, [ALERT, OTHER, QUALITY], "gold.alerts", run_id="r1")

    with caplog.at_level(logging.ERROR, logger="lakeboost.monitor.alerts"):
        first = deliver_alerts(catalog, "gold.alerts", hooks)
    # From the request's arrival to the hook's failure: the client's timeout, not the server's 10 s.
    waited = caplog.records[-1].created - receiver.arrived[0]
    receiver.release.set()
    second = deliver_alerts(catalog, "gold.alerts", hooks)
    third = deliver_alerts(catalog, "gold.alerts", hooks)

    # One timeout, then the hook is left alone for the run: the other alerts were not tried.
    assert len(receiver.received) == 4 and 0.4 < waited < 8  # the server would answer after 10 s
    assert (first.tried, first.pending, len(first.failures)) == (1, 3, 1) and "timed out" in first.failures[0]
    assert (second.tried, second.delivered, third.tried) == (3, 3, 0)
    assert sorted(key for _, key in receiver.received[1:]) == sorted(a.alert_id for a in (ALERT, OTHER, QUALITY))
    timed_out = receiver.payloads()[0]["kind"]  # the oldest pending alert (ties: by id)
    attempts = {r.kind: r.attempts for r in catalog.read("gold.alerts").filter("delivery = 'delivered'").collect()}
    assert attempts == {a.kind: 2 if a.kind == timed_out else 1 for a in (ALERT, OTHER, QUALITY)}


def test_a_retrain_is_requested_once_for_the_alerts_that_ask_for_one(catalog, spark: SparkSession) -> None:
    record_alerts(catalog, [ALERT, QUALITY], "gold.alerts", run_id="r1", retrain_kinds=("data_drift",))
    record_alerts(catalog, [OTHER], "gold.alerts", run_id="r2")  # raised while retraining was off

    first = request_retrains(catalog, "gold.alerts")
    second = request_retrains(catalog, "gold.alerts")

    assert (first, second) == ([ALERT], [])
    _state(catalog, spark, [("data_drift", "pending", [], 0, None, "requested"),
                            ("data_quality", "pending", [], 0, None, None),
                            ("performance_decay", "pending", [], 0, None, None)])
    assert catalog.read("gold.alerts").filter("retrain_requested_at IS NOT NULL").count() == 1


def test_an_alerts_table_from_before_delivery_states_gets_them_and_its_old_alerts_are_not_resent(
        receiver: Receiver, catalog, spark: SparkSession) -> None:
    old = spark.createDataFrame([("data_drift", "gold.stream_predictions", dt.datetime(2026, 3, 2), "*", 0.71, 0.2,
                                  "old", 3, "r0", dt.datetime(2026, 3, 9))],
                                "kind string, table string, window_start timestamp, subject string, value double, "
                                "threshold double, message string, model_version bigint, monitor_run_id string, "
                                "raised_at timestamp")
    catalog.write(old, "gold.alerts")
    hooks = [AlertHook(kind="webhook", url=receiver.url)]

    assert deliver_alerts(catalog, "gold.alerts", hooks).tried == 0  # no delivery columns yet
    assert record_alerts(catalog, [ALERT, OTHER], "gold.alerts", run_id="r1") == [OTHER]
    delivery = deliver_alerts(catalog, "gold.alerts", hooks)

    assert receiver.payloads() == [json.loads(OTHER.to_json())] and delivery.delivered == 1
    _state(catalog, spark, [("data_drift", None, None, None, None, None),
                            ("performance_decay", "delivered", [hook_id(hooks[0])], 1, None, None)])
