"""Streaming scoring on the e2e demo: exactly once under SIGKILL at named points and after a lost
checkpoint, same scores as one batch, and a champion change picked up by the running stream."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from lakeboost.config.durations import parse_duration
from lakeboost.faults import FAULT_ENV
from lakeboost.io import TableCatalog
from lakeboost.model.registry import CHAMPION, current_alias
from lakeboost.model.tracking import use_tracking
from lakeboost.score.stream import stream_score
from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from tests.conftest import DEMO_OVERRIDES, DEMO_PII_KEY, REPO, TEST_JOB_SETS
from tests.helpers import checkpoint_batches

pytestmark = pytest.mark.e2e
# Two of the live source's ten commits (conftest.LIVE_AS_COMMITS) per micro-batch: five batches, enough for a kill
# inside batch 1, one inside batch 2 and a finish (one file per batch took the test twice as long).
KILLED = ["scoring.stream.predictions_table=gold.stream_killed", "scoring.stream.events_table=silver.live_killed",
          "scoring.stream.max_files_per_trigger=2"]


def _log_commits(catalog: TableCatalog, table: str) -> int:
    # Count commits on disk: this session's Delta log cache lags a foreign writer.
    return len(list((Path(catalog.path(table)) / "_delta_log").glob("*.json")))


def _run_scorer(config, overrides: list[str], *, fault: str | None = None) -> subprocess.CompletedProcess:
    """jobs/score_stream.py as a user runs it (the suite's Spark settings), to the end or to the named fault point."""
    sets = [f"storage.root={config.storage.root}", f"storage.landing={config.storage.landing}",
            *DEMO_OVERRIDES, *TEST_JOB_SETS, *overrides]
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "LAKEBOOST_PII_KEY": DEMO_PII_KEY,
           "CUSTOMERS_JDBC_URL": f"jdbc:sqlite:{config.storage.landing}/customers.db"}
    env.pop(FAULT_ENV, None)
    if fault:
        env[FAULT_ENV] = fault
    argv = [sys.executable, str(REPO / "jobs/score_stream.py")]
    for item in sets:
        argv += ["--set", item]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, start_new_session=True)


def _killed_at(done: subprocess.CompletedProcess, point: str) -> None:
    assert done.returncode == -signal.SIGKILL, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert f"lakeboost fault injection: killed at {point}" in done.stderr


def test_killed_stream_scores_every_event_exactly_once_with_batch_equal_scores(spark: SparkSession, demo) -> None:
    config, _ = demo
    catalog = TableCatalog(spark, config.storage)
    predictions, events = "gold.stream_killed", "silver.live_killed"
    checkpoint = Path(catalog.checkpoint(predictions, "stream_score"))

    def batches_scored() -> list[int]:  # the batch id of every prediction
        return [r.batch_id for r in catalog.read(predictions).select("batch_id").collect()]

    # Kill 1: batch 1's events committed, its predictions not.
    _killed_at(_run_scorer(config, KILLED, fault="score_stream.after_events_commit:1"),
               "score_stream.after_events_commit")
    first = batches_scored()
    assert set(first) == {0} and _log_commits(catalog, events) == 2
    assert catalog.read(events).count() > len(first)  # batch 1's events wait for their predictions
    assert checkpoint_batches(checkpoint) == ({0, 1}, {0})
    # Kill 2: the replayed batch 1 scored its events (without writing them again) and batch 2
    # committed its predictions; batch 2's checkpoint did not.
    _killed_at(_run_scorer(config, KILLED, fault="score_stream.after_predictions_commit:2"),
               "score_stream.after_predictions_commit")
    second = batches_scored()
    assert set(second) == {0, 1, 2} and second.count(0) == len(first)
    assert catalog.read(events).count() == len(second) == catalog.read(events).select("txn_id").distinct().count()
    assert checkpoint_batches(checkpoint) == ({0, 1, 2}, {0, 1})
    # Then the checkpoint is lost: a new query replays bronze from its first version.
    shutil.rmtree(checkpoint)
    resumed = config.model_copy(update={"scoring": config.scoring.model_copy(update={
        "stream": config.scoring.stream.model_copy(update={"predictions_table": predictions,
                                                           "events_table": events})})})
    stream_score(TableCatalog(spark, resumed.storage), resumed)

    live = catalog.read("bronze.card_events").select("txn_id").distinct()
    scored = catalog.read(predictions)
    assert scored.count() == scored.select("txn_id").distinct().count() == live.count() > 0
    assert scored.select("txn_id").exceptAll(live).isEmpty() and live.exceptAll(scored.select("txn_id")).isEmpty()
    assert catalog.read(events).count() == catalog.read(events).select("txn_id").distinct().count() == live.count()
    champion = current_alias(config.training.tracking.registered_model, CHAMPION)
    assert {r.model_version for r in scored.select("model_version").distinct().collect()} == {champion}

    # The same events scored in one uninterrupted micro-batch get the same scores: features of
    # later batches saw earlier batches' events through the events table, exactly once.
    reference = resumed.model_copy(update={"scoring": config.scoring.model_copy(update={
        "stream": config.scoring.stream.model_copy(update={
            "predictions_table": "gold.stream_reference", "events_table": "silver.live_reference",
            "max_files_per_trigger": 1000})})})
    stream_score(TableCatalog(spark, reference.storage), reference)
    compared = scored.alias("k").join(catalog.read("gold.stream_reference").alias("r"), "txn_id", "full_outer")
    assert compared.count() == live.count()
    assert compared.filter(F.abs(F.col("k.score") - F.col("r.score")) > 1e-6).isEmpty()
    assert compared.filter(F.col("k.score").isNull() | F.col("r.score").isNull()).isEmpty()
    business = [c for c in catalog.read(events).columns if not c.startswith("_")]
    reference_events = catalog.read("silver.live_reference").select(*business)
    assert catalog.read(events).select(*business).exceptAll(reference_events).isEmpty()
    stream_quarantine = catalog.read(config.scoring.stream.quarantine_table).filter(
        F.col("table") == config.scoring.stream.source)
    assert stream_quarantine.count() == stream_quarantine.select("record").distinct().count()


def test_running_stream_picks_up_a_new_champion_at_the_next_micro_batch(spark: SparkSession, demo) -> None:
    config, _ = demo
    catalog = TableCatalog(spark, config.storage)
    use_tracking(config)
    client, name = MlflowClient(), config.training.tracking.registered_model
    original = current_alias(name, CHAMPION)
    live = catalog.read("bronze.card_events").orderBy("txn_id").persist()
    first_half = live.limit(live.count() // 2).persist()
    catalog.write(first_half, "bronze.live_switch", mode="overwrite")
    switched = config.model_copy(update={"scoring": config.scoring.model_copy(update={
        "stream": config.scoring.stream.model_copy(update={
            "source": "bronze.live_switch", "predictions_table": "gold.stream_switch",
            "events_table": "silver.live_switch", "interval": parse_duration("1s"),
            "max_files_per_trigger": 1000})})})
    outcome: dict = {}
    runner = threading.Thread(target=lambda: outcome.setdefault(
        "summary", stream_score(TableCatalog(spark, switched.storage), switched, continuous=True, timeout_seconds=600)))
    runner.start()
    try:
        _wait_for(lambda: catalog.exists("gold.stream_switch")
                  and catalog.read("gold.stream_switch").count() == first_half.count())
        # A new registered version (the same run's model, which is enough to tell them apart).
        source = client.get_model_version(name, str(original))
        new = int(client.create_model_version(name, source.source, run_id=source.run_id).version)
        client.set_registered_model_alias(name, CHAMPION, str(new))
        catalog.write(live.exceptAll(first_half), "bronze.live_switch")
        _wait_for(lambda: catalog.read("gold.stream_switch").count() == live.count())
    finally:
        for query in spark.streams.active:
            if query.name == "stream_score":
                query.stop()
        runner.join(timeout=120)
        client.set_registered_model_alias(name, CHAMPION, str(original))

    versions = (catalog.read("gold.stream_switch").join(first_half.select("txn_id", F.lit(1).alias("first")),
                                                        "txn_id", "left")
                .groupBy(F.col("first").isNotNull().alias("first_half")).agg(F.collect_set("model_version").alias("v"))
                .collect())
    assert {r.first_half: sorted(r.v) for r in versions} == {True: [original], False: [new]}
    assert outcome["summary"].details["model_versions"] == [original, new]


def _wait_for(condition, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the stream did not produce the expected predictions in time"
        time.sleep(0.5)


def test_live_events_breaking_the_contract_are_quarantined_with_reasons_and_counted(spark: SparkSession,
                                                                                   demo) -> None:
    config, _ = demo
    catalog = TableCatalog(spark, config.storage)
    live = catalog.read("bronze.card_events")
    sample = live.orderBy("txn_id").limit(5).persist()
    ids = [r.txn_id for r in sample.select("txn_id").collect()]
    types = dict(live.dtypes)
    defects = sample.withColumns({
        "amount": F.when(F.col("txn_id") == ids[0], F.lit(-5).cast(types["amount"])).otherwise(F.col("amount")),
        "currency": F.when(F.col("txn_id") == ids[1], F.lit("XXX")).otherwise(F.col("currency")),
        "customer_id": F.when(F.col("txn_id") == ids[2], F.lit(-1).cast(types["customer_id"]))
        .otherwise(F.col("customer_id")),
    })
    # ids[3] arrives twice in the batch: scored once.
    catalog.write(defects.unionByName(sample.filter(F.col("txn_id") == ids[3])), "bronze.live_defects",
                  mode="overwrite")
    checked = config.model_copy(update={"scoring": config.scoring.model_copy(update={
        "stream": config.scoring.stream.model_copy(update={
            "source": "bronze.live_defects", "predictions_table": "gold.stream_defects",
            "events_table": "silver.live_defects", "quarantine_table": "silver.quarantine_live_defects"})})})

    summary = stream_score(TableCatalog(spark, checked.storage), checked)

    assert (summary.rows_read, summary.rows_written, summary.rows_quarantined) == (6, 2, 2)
    assert (summary.details["dropped"], summary.details["duplicates"]) == (1, 1)
    assert sorted(r.txn_id for r in catalog.read("gold.stream_defects").collect()) == ids[3:]
    quarantined = catalog.read("silver.quarantine_live_defects")
    reasons = {r.txn: r.failed_rules for r in quarantined.select(
        F.get_json_object("record", "$.txn_id").alias("txn"), "failed_rules").collect()}
    assert reasons == {ids[0]: "amount_positive", ids[1]: "currency_known"}
    assert quarantined.filter(~F.col("run_id").startswith("stream-")).isEmpty()
