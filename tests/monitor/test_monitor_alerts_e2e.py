"""The monitor job on a copy of the e2e demo whose labels were flipped: a performance_decay alert
end to end, and that alert delivered and its retrain requested despite SIGKILLs between
recording, sending and requesting, ending equal to an uninterrupted run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from lakeboost.faults import FAULT_ENV
from lakeboost.io import TableCatalog
from lakeboost.model import CHAMPION, load_model
from lakeboost.model.tracking import use_tracking
from lakeboost.monitor.alerts import ALERT_KEYS, hook_id
from lakeboost.monitor.records import KEYS as RECORD_KEYS
from lakeboost.monitor.step import RETRAIN_STEPS, monitor_step
from mlflow import MlflowClient
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual
from sklearn.metrics import roc_auc_score

from tests.conftest import DEMO_OVERRIDES, DEMO_PII_KEY, LIVE_AS_COMMITS, REPO, TEST_JOB_SETS, demo_config
from tests.monitor.webhook import Receiver

pytestmark = pytest.mark.e2e
# ROC AUC, not the demo's PR AUC: flipping labels turns ROC AUC into 1 - AUC whatever the share of
# positives, while PR AUC rises with that share (98 of the day's 100 payments become frauds).
# The scored day has 100 payments: judged with min_labelled_rows 50. Only the batch predictions
# are watched (the live ones have no labels).
# No slices: this file proves the alert's path (recorded, sent, retrain asked) through kills, on
# the whole window's verdict; the slices are the demo run's (tests/monitor/test_step.py). Four
# monitor runs here, each of which would add the sliced aggregations.
JUDGED = ["monitor.metric=roc_auc", "monitor.min_labelled_rows=50", "monitor.retrain_on_alert=true",
          "monitor.slices=[]"]
CLEAN = ["monitor.table=gold.monitoring_clean", "monitor.alerts_table=gold.alerts_clean"]
KILLED = ["monitor.table=gold.monitoring_killed", "monitor.alerts_table=gold.alerts_killed"]
VOLATILE = {"monitor_run_id", "computed_at", "raised_at", "delivered_at", "retrain_requested_at"}


def _flip_labels(catalog: TableCatalog, config) -> None:
    """Every batch-scored payment's label flipped: its chargeback dropped, or one reported a day
    after a payment that had none. Labels of other payments are kept."""
    dataset = config.dataset
    label = dataset.label
    scored = catalog.read(config.scoring.predictions_table).select(*dataset.key, dataset.event_time).distinct()
    as_key = [F.col(c).alias(k) for c, k in zip(dataset.label_key, dataset.key, strict=True)]
    chargebacks = catalog.read(label.table)
    kept = chargebacks.join(scored.select(*[F.col(k).alias(c) for c, k in zip(dataset.label_key, dataset.key,
                                                                             strict=True)]),
                            list(dataset.label_key), "left_anti")
    flipped = (scored.join(chargebacks.select(*as_key), list(dataset.key), "left_anti")
               .select(*[F.col(k).alias(c) for c, k in zip(dataset.label_key, dataset.key, strict=True)],
                       (F.col(dataset.event_time) + F.expr("INTERVAL 1 DAY")).alias(label.available_at)))
    flipped_rows = kept.unionByName(flipped, allowMissingColumns=True).localCheckpoint()
    catalog.write(flipped_rows, label.table, mode="overwrite")


def _latest_day_only(catalog: TableCatalog, config) -> None:
    """The batch predictions of the latest scored day alone (the demo re-scores 28 days): one
    window of ~100 payments, judged alone."""
    predictions = catalog.read(config.scoring.predictions_table)
    day = F.to_date(config.dataset.event_time)
    latest = predictions.select(F.max(day)).first()[0]
    catalog.write(predictions.filter(day == F.lit(latest)).localCheckpoint(), config.scoring.predictions_table,
                  mode="overwrite")


@pytest.fixture(scope="module")
def degraded(spark: SparkSession, demo, tmp_path_factory: pytest.TempPathFactory):
    """A copy of the demo lakehouse (its own MLflow store) with flipped labels, and one
    uninterrupted monitor run on it: (root, receiver, the config's overrides, the run's config,
    its summary)."""
    config, _ = demo
    root = tmp_path_factory.mktemp("degraded")
    shutil.copytree(config.storage.root, root / "lake")
    receiver = Receiver()
    sets = [*JUDGED, f"monitor.predictions=[{config.scoring.predictions_table}]",
            f"monitor.hooks=[{{kind: webhook, url: '{receiver.url}', timeout_seconds: 5}}]"]
    clean = demo_config(root, [*sets, *CLEAN], landing=Path(config.storage.landing))
    _latest_day_only(TableCatalog(spark, clean.storage), clean)
    _flip_labels(TableCatalog(spark, clean.storage), clean)
    try:
        yield root, receiver, sets, clean, monitor_step(TableCatalog(spark, clean.storage), clean)
    finally:
        receiver.close()
        use_tracking(config)  # the other e2e tests' MLflow store


def test_flipped_labels_raise_one_performance_decay_alert_delivered_with_a_retrain_request(
        spark: SparkSession, degraded) -> None:
    _, receiver, _, config, summary = degraded
    catalog = TableCatalog(spark, config.storage)
    champion = load_model(config.training.tracking.registered_model, CHAMPION)
    baseline = MlflowClient().get_run(champion.run_id).data.metrics["test_roc_auc_binned"]
    bound = baseline * (1 - config.monitor.max_relative_drop)
    # The oracle: the day's ROC AUC on its true and flipped labels, from sklearn.
    dataset = champion.dataset
    flipped = set(r[0] for r in catalog.read(dataset.label.table).select(*dataset.label_key).collect())
    scored = catalog.read(config.scoring.predictions_table).filter(F.col("model_version") == champion.version)
    pairs = [(r[dataset.key[0]] in flipped, r["score"]) for r in scored.select(*dataset.key, "score").collect()]
    truth = roc_auc_score([not y for y, _ in pairs], [s for _, s in pairs])
    assert truth > bound  # the true labels would not breach
    week = scored.select(F.date_trunc("week", F.min(dataset.event_time))).first()[0]

    decay = (catalog.read(config.monitor.table)
             .filter(f"table = '{config.scoring.predictions_table}' AND kind = 'performance' AND metric = 'roc_auc' "
                     "AND slice = 'all'")
             .select("window_start", "status", "breached", "rows", "value").collect())
    assert [tuple(r)[:4] for r in decay] == [(week, "evaluated", True, len(pairs))]
    assert decay[0]["value"] == pytest.approx(1 - truth, abs=0.01)  # binned in 1,000 score buckets

    # One alert, recorded, delivered once with its id, its retrain asked of the runner.
    alerts = catalog.read(config.monitor.alerts_table)
    expected = spark.createDataFrame(
        [("performance_decay", config.scoring.predictions_table, week, "*", decay[0]["value"], bound,
          champion.version, "delivered", [hook_id(config.monitor.hooks[0])], 1, None, "requested")],
        "kind string, table string, window_start timestamp, subject string, value double, threshold double, "
        "model_version bigint, delivery string, delivered_to array<string>, attempts int, last_error string, "
        "retrain string")
    assertDataFrameEqual(alerts.select(*expected.columns), expected, rtol=1e-9)
    [payload] = receiver.payloads()
    assert payload["alert_id"] == alerts.first()["alert_id"] == receiver.received[0][1]
    assert payload["message"].startswith(f"{config.scoring.predictions_table}, week of {week:%Y-%m-%d}: "
                                         f"roc_auc {decay[0]['value']:.3f} fell below {bound:.3f}")
    assert summary.details["retrain"] == {"steps": list(RETRAIN_STEPS), "triggers": ["performance_decay"]}
    assert summary.follow_up == RETRAIN_STEPS and summary.details["new_alerts"] == 1
    assert summary.details["hook_failures"] == [] and summary.details["undelivered_alerts"] == 0


def _monitor_killed_at(root: Path, sets: list[str], point: str, landing: str) -> None:
    """jobs/monitor.py in its own process (the suite's Spark settings), killed at `point`."""
    argv = [sys.executable, str(REPO / "jobs/monitor.py")]
    for item in [f"storage.root={root}/lake", f"storage.landing={landing}", *DEMO_OVERRIDES, *LIVE_AS_COMMITS,
                 *TEST_JOB_SETS, *sets]:
        argv += ["--set", item]
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "LAKEBOOST_PII_KEY": DEMO_PII_KEY,
           "CUSTOMERS_JDBC_URL": f"jdbc:sqlite:{landing}/customers.db", FAULT_ENV: point}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    assert f"lakeboost fault injection: killed at {point}" in done.stderr


def _commits(catalog: TableCatalog, table: str) -> list[tuple[str, dict]]:
    """(operation, metrics) of every commit in the table's Delta log, read from disk."""
    out = []
    for path in sorted((Path(catalog.path(table)) / "_delta_log").glob("*.json")):
        info = next(json.loads(line)["commitInfo"] for line in path.read_text().splitlines() if "commitInfo" in line)
        out.append((info["operation"], info.get("operationMetrics", {})))
    return out


def _stable(df: DataFrame) -> DataFrame:
    return df.drop(*VOLATILE)


def test_kills_after_recording_and_after_sending_still_deliver_once_and_request_the_retrain(
        spark: SparkSession, degraded) -> None:
    root, receiver, sets, clean, _ = degraded
    landing = str(clean.storage.landing)
    config = demo_config(root, [*sets, *KILLED], landing=Path(landing))
    catalog = TableCatalog(spark, config.storage)
    alerts, sent = config.monitor.alerts_table, len(receiver.received)

    # Kill 1, between recording the alert and sending it.
    _monitor_killed_at(root, [*sets, *KILLED], "monitor.after_alert_recorded", landing)
    # It struck there: the alerts table's one commit wrote the alert, pending, never tried; nothing was sent.
    assert [(op, m.get("numOutputRows")) for op, m in _commits(catalog, alerts)] == [("WRITE", "1")]
    state = ["kind", "delivery", "delivered_to", "attempts", "retrain"]
    assert [tuple(r) for r in catalog.read(alerts).select(*state).collect()] == [
        ("performance_decay", "pending", [], 0, "pending")]
    assert len(receiver.received) == sent

    # Kill 2: the re-run sends it (first thing), then dies before asking for the retrain.
    _monitor_killed_at(root, [*sets, *KILLED], "monitor.after_alert_sent", landing)
    assert [op for op, _ in _commits(catalog, alerts)] == ["WRITE", "MERGE"]
    assert [tuple(r) for r in catalog.read(alerts).select(*state).collect()] == [
        ("performance_decay", "delivered", [hook_id(config.monitor.hooks[0])], 1, "pending")]
    assert len(receiver.received) == sent + 1 and receiver.received[-1] == receiver.received[0]

    # The last re-run sends nothing again and asks for the retrain the kills left pending.
    summary = monitor_step(catalog, config)

    assert len(receiver.received) == sent + 1
    assert summary.details["retrain"] == {"steps": list(RETRAIN_STEPS), "triggers": ["performance_decay"]}
    assert summary.follow_up == RETRAIN_STEPS
    assert (summary.details["new_alerts"], summary.details["resent_alerts"]) == (0, 0)
    assert [op for op, _ in _commits(catalog, alerts)] == ["WRITE", "MERGE", "UPDATE"]
    # Every table as the uninterrupted run left it, with no duplicate key.
    assertDataFrameEqual(_stable(catalog.read(alerts)), _stable(catalog.read(clean.monitor.alerts_table)))
    assertDataFrameEqual(_stable(catalog.read(config.monitor.table)), _stable(catalog.read(clean.monitor.table)))
    for table, keys in ((alerts, ALERT_KEYS), (config.monitor.table, RECORD_KEYS)):
        assert catalog.read(table).groupBy(*keys).count().filter("count > 1").isEmpty(), table
