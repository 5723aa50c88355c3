"""The demo's live events through a real Kafka broker: produced, ingested into bronze by a job
SIGKILLed between two commits of a micro-batch and restarted, then scored by the live stream;
every record in bronze once, every event scored once, bad values quarantined with reasons."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from lakeboost.config.model import KafkaSourceConfig
from lakeboost.faults import FAULT_ENV
from lakeboost.ingest.bronze import ingest_sources
from lakeboost.io import TableCatalog
from lakeboost.score.stream import stream_score
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from tests.conftest import DEMO_OVERRIDES, DEMO_PII_KEY, REPO, TEST_JOB_SETS
from tests.helpers import txn_versions

pytestmark = [pytest.mark.e2e, pytest.mark.kafka]
SOURCE = "card_events_kafka"
BAD = [("c-bad-1", '{"event_id": "EBAD1", "txn_id": "TBAD1", "customer_id": 1, "amount": "lots"}'),
       ("c-bad-2", '{"event_id": "EBAD2", "txn_id": "TBAD2", "customer_id": ')]


def _source(servers: str, topic: str, schema: dict[str, str]) -> dict:
    # Two micro-batches for the demo's ~700 live events: a kill inside the first.
    return {"format": "kafka", "bootstrap_servers": servers, "topic": topic, "schema": schema,
            "max_offsets_per_trigger": 400}


def _ingest_job(config, source: dict, fault: str) -> subprocess.CompletedProcess:
    """jobs/ingest.py as a user runs it (the suite's Spark settings), for the Kafka source only, to the named
    fault point."""
    sets = [f"storage.root={config.storage.root}", f"storage.landing={config.storage.landing}",
            *DEMO_OVERRIDES, *TEST_JOB_SETS, f"sources.{SOURCE}={json.dumps(source)}"]
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "LAKEBOOST_PII_KEY": DEMO_PII_KEY,
           "CUSTOMERS_JDBC_URL": f"jdbc:sqlite:{config.storage.landing}/customers.db", FAULT_ENV: fault}
    argv = [sys.executable, str(REPO / "jobs/ingest.py"), "--source", SOURCE]
    for item in sets:
        argv += ["--set", item]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, start_new_session=True)


@pytest.fixture()
def own_quarantine_rows_removed(spark: SparkSession, demo):
    """The test's quarantine rows leave the shared demo lake with it: later tests in this process
    (the Connect e2e compares every table's row count with this lake's) see the demo's own."""
    config, _ = demo
    catalog = TableCatalog(spark, config.storage)
    quarantine = config.storage.tables.bronze_quarantine
    before = catalog.read(quarantine).count() if catalog.exists(quarantine) else 0
    yield
    if catalog.exists(quarantine):
        spark.sql(f"DELETE FROM {catalog.sql_ref(quarantine)} WHERE source = '{SOURCE}'")
        assert catalog.read(quarantine).count() == before


# `kafka_broker_starting` before `demo`: the broker starts while the demo lakehouse builds.
def test_kafka_events_killed_mid_ingest_land_and_score_exactly_once(
        spark: SparkSession, kafka_broker_starting, demo, kafka_broker: str, tmp_path: Path,
        own_quarantine_rows_removed: None) -> None:
    config, _ = demo
    catalog = TableCatalog(spark, config.storage)
    live = catalog.read("bronze.card_events")
    schema = dict(config.sources["card_events"].declared_schema)
    business = list(schema)
    topic = f"card-events-{tmp_path.name[-8:]}"
    events = live.select(F.col("customer_id").cast("string").alias("key"),
                         F.to_json(F.struct(*business)).alias("value"))
    bad = spark.createDataFrame(BAD, "key string, value string")
    (events.unionByName(bad).write.format("kafka").option("kafka.bootstrap.servers", kafka_broker)
     .option("topic", topic).save())
    produced = live.count() + len(BAD)
    source = _source(kafka_broker, topic, schema)

    # Killed after batch 0's bronze commit, before its quarantine commit and its checkpoint commit.
    killed = _ingest_job(config, source, "ingest.kafka.after_bronze_commit:0")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert "lakeboost fault injection: killed at ingest.kafka.after_bronze_commit" in killed.stderr
    table = f"bronze.{SOURCE}"
    assert txn_versions(Path(catalog.path(table)), f"lakeboost.ingest.{SOURCE}.") == {0}
    assert not Path(catalog.path(config.storage.tables.bronze_quarantine)).exists() or not txn_versions(
        Path(catalog.path(config.storage.tables.bronze_quarantine)), f"lakeboost.ingest.{SOURCE}.quarantine.")
    landed_at_kill = catalog.read(table).count()
    assert 0 < landed_at_kill < live.count()

    # Restarted: batch 0 is replayed from the checkpoint's offsets (its bronze rows recognised and
    # not written again, its quarantine rows written), then the rest.
    added = {SOURCE: KafkaSourceConfig.model_validate(source)}
    stream = config.scoring.stream.model_copy(update={
        "source": table, "events_table": "silver.live_kafka", "predictions_table": "gold.stream_kafka",
        "max_files_per_trigger": 1000})
    resumed = config.model_copy(update={"sources": {**config.sources, **added},
                                        "scoring": config.scoring.model_copy(update={"stream": stream})})
    rest = ingest_sources(TableCatalog(spark, resumed.storage), resumed, [SOURCE])
    assert rest.rows_written == live.count() - landed_at_kill

    bronze = catalog.read(table)
    records = bronze.select("_kafka_partition", "_kafka_offset")
    assert bronze.count() == records.distinct().count() == live.count()
    assert bronze.select(*business).exceptAll(live.select(*business)).isEmpty()
    assert live.select(*business).exceptAll(bronze.select(*business)).isEmpty()
    quarantined = catalog.read(config.storage.tables.bronze_quarantine).filter(F.col("source") == SOURCE)
    reasons = sorted(r["reason"] for r in quarantined.collect())
    assert len(reasons) == len(BAD) and reasons[0].startswith("bad_value: column amount: 'lots'")
    assert reasons[1].startswith("malformed_json")
    # Every produced record once: in bronze or in the quarantine, none twice.
    assert records.count() + quarantined.select("source_file").distinct().count() == produced

    stream_score(TableCatalog(spark, resumed.storage), resumed)
    scored = catalog.read("gold.stream_kafka")
    assert scored.count() == scored.select("txn_id").distinct().count() == live.count()
    assert scored.select("txn_id").exceptAll(live.select("txn_id")).isEmpty()
