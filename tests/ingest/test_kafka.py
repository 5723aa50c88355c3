"""Kafka sources against a real KRaft broker: values parsed and quarantined like file lines,
lineage kept, exactly once across re-runs and a lost checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyspark
import pytest
from lakeboost.config import load_config
from lakeboost.config.model import KafkaSourceConfig
from lakeboost.errors import ConfigError, SourceError
from lakeboost.ingest.bronze import ingest_sources
from lakeboost.io import TableCatalog
from pydantic import ValidationError
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from tests.helpers import make_config, write_lines

REPO = Path(__file__).resolve().parents[2]
SCHEMA = {"event_id": "string", "n": "int", "amount": "double"}


def produce(spark: SparkSession, servers: str, topic: str, records: list[tuple[str | None, str]]) -> None:
    """Send (key, value) records with Spark's Kafka sink, each with a `trace` header."""
    rows = spark.createDataFrame(records, "key string, value string")
    (rows.select("key", "value", F.array(F.struct(F.lit("trace").alias("key"),
                                                   F.lit(b"t-1").alias("value"))).alias("headers"))
     .write.format("kafka").option("kafka.bootstrap.servers", servers).option("topic", topic).save())


def test_kafka_source_config_takes_one_subscription_and_hides_credentials() -> None:
    base = {"format": "kafka", "bootstrap_servers": "127.0.0.1:9092", "schema": SCHEMA}
    with pytest.raises(ValidationError, match="exactly one of `topic`"):
        KafkaSourceConfig.model_validate(base)
    with pytest.raises(ValidationError, match="set by lakeboost"):
        KafkaSourceConfig.model_validate({**base, "topic": "t", "options": {"startingOffsets": "latest"}})
    secret = "org.apache.kafka.common.security.plain.PlainLoginModule required password=\"s3cr3t\";"
    cfg = KafkaSourceConfig.model_validate({**base, "topic_pattern": "events-.*",
                                            "options": {"kafka.sasl.jaas.config": secret}})
    assert "s3cr3t" not in cfg.model_dump_json()
    assert cfg.options["kafka.sasl.jaas.config"] == secret


def test_shipped_spark_kafka_connector_matches_pyspark() -> None:
    packages = load_config("local", conf_dir=REPO / "conf").spark.jvm_packages
    connector = [p for p in packages if ":spark-sql-kafka-0-10_" in p]
    assert connector == [f"org.apache.spark:spark-sql-kafka-0-10_2.13:{pyspark.__version__}"]


def test_local_plus_kafka_overlays_turn_the_demo_live_source_into_a_kafka_topic() -> None:
    files = load_config("local", conf_dir=REPO / "conf", environ={})
    kafka = load_config("local+kafka", conf_dir=REPO / "conf", environ={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"})
    live = kafka.sources["card_events"]
    assert isinstance(live, KafkaSourceConfig)  # replaced whole: the file source's path is not left over
    assert (live.bootstrap_servers, live.topic) == ("127.0.0.1:9", "card_events")
    assert dict(live.declared_schema) == dict(files.sources["card_events"].declared_schema)
    assert kafka.spark.conf == files.spark.conf  # the local overlay still applies
    with pytest.raises(ConfigError, match="KAFKA_BOOTSTRAP_SERVERS"):
        load_config("local+kafka", conf_dir=REPO / "conf", environ={})


@pytest.mark.kafka
def test_kafka_values_land_once_with_lineage_quarantine_and_rescued_fields(
        spark: SparkSession, kafka_broker: str, tmp_path: Path) -> None:
    topic, csv_topic = f"events-{tmp_path.name[-8:]}", f"csv-{tmp_path.name[-8:]}"
    good = [(f"k{i}", json.dumps({"event_id": f"E{i}", "n": i, "amount": i / 2})) for i in range(40)]
    bad = [("kb1", '{"event_id": "B1", "n": "not-a-number", "amount": 1.0}'), ("kb2", "[1, 2]"),
           ("kb3", '{"event_id": "B3", "n": 3')]
    drifted = [("kd", json.dumps({"event_id": "D1", "n": 1, "amount": 2.0, "channel": "web"}))]
    produce(spark, kafka_broker, topic, good + bad + drifted)
    produce(spark, kafka_broker, csv_topic, [("c1", "C1,1,1.5"), ("c2", "C2,oops,2.5"), ("c3", "C3,3")])
    sources = {
        "events": {"format": "kafka", "bootstrap_servers": kafka_broker, "topic": topic, "schema": SCHEMA},
        "events_csv": {"format": "kafka", "bootstrap_servers": kafka_broker, "topic_pattern": "csv-.*",
                       "value_format": "csv", "schema": SCHEMA, "max_offsets_per_trigger": 2},
    }
    config = make_config(tmp_path, sources)
    catalog = TableCatalog(spark, config.storage)

    first = ingest_sources(catalog, config)

    bronze = catalog.read("bronze.events")
    assert (first.details["events"]["rows_written"], first.details["events"]["rows_quarantined"]) == (41, 3)
    assert bronze.count() == bronze.select("_kafka_partition", "_kafka_offset").distinct().count() == 41
    assert bronze.select("_kafka_partition").distinct().count() == 2  # the broker's two partitions, both read
    row = bronze.filter(F.col("event_id") == "E7").first()
    assert row is not None
    assert (row["n"], row["amount"], row["_kafka_key"], row["_kafka_topic"]) == (7, 3.5, "k7", topic)
    assert row["_kafka_headers"][0].asDict() == {"key": "trace", "value": "t-1"}
    assert row["_source_file"] == f"kafka://{topic}/{row['_kafka_partition']}"
    assert row["_source_position"] == row["_kafka_offset"] and row["_kafka_timestamp"] is not None
    rescued = bronze.filter(F.col("event_id") == "D1").first()
    assert rescued is not None and json.loads(rescued["_rescued_data"]) == {"channel": "web"}
    quarantine = catalog.read(config.storage.tables.bronze_quarantine)
    reasons = {r["raw_record"]: r["reason"] for r in quarantine.filter(F.col("source") == "events").collect()}
    assert len(reasons) == 3
    assert any("bad_value: column n: 'not-a-number' is not a valid int" in r for r in reasons.values())
    assert reasons["[1, 2]"].startswith("malformed_json") and reasons['{"event_id": "B3", "n": 3'].startswith(
        "malformed_json")
    assert all(f.startswith(f"kafka://{topic}/") and "@" in f for f in
               [r[0] for r in quarantine.filter(F.col("source") == "events").select("source_file").collect()])
    csv_reasons = sorted(r["reason"] for r in quarantine.filter(F.col("source") == "events_csv").collect())
    assert csv_reasons == ["bad_value: column n: 'oops' is not a valid int",
                           "field_count: expected 3 fields, found 2"]
    assert [r[0] for r in catalog.read("bronze.events_csv").collect()] == ["C1"]
    # max_offsets_per_trigger 2: three records in two micro-batches.
    assert catalog.read("bronze.events_csv").select("_batch_id").first()[0] in (0, 1)

    # A lost checkpoint replays the topic from the earliest offset under a new query (new Delta
    # txn ids): every record is recognised by its (topic, partition, offset) and none is written.
    shutil.rmtree(catalog.checkpoint("bronze.events", "ingest"))
    replayed = ingest_sources(catalog, config, ["events"])
    assert (replayed.rows_read, replayed.rows_written, replayed.rows_quarantined, replayed.rows_skipped) == (
        44, 0, 0, 44)
    assert catalog.read("bronze.events").count() == 41
    assert quarantine.filter(F.col("source") == "events").count() == 3


@pytest.mark.kafka
def test_demo_publishes_its_live_event_files_to_the_topic_once(
        spark: SparkSession, kafka_broker: str, tmp_path: Path) -> None:
    from card_fraud.live_kafka import publish_card_events

    lines = [json.dumps({"event_id": f"E{i}", "customer_id": i % 3}) for i in range(30)]
    write_lines(tmp_path / "card_events" / "events_0000.json", lines[:20])
    write_lines(tmp_path / "card_events" / "events_0001.json", lines[20:])
    cfg = KafkaSourceConfig.model_validate({"format": "kafka", "bootstrap_servers": kafka_broker,
                                            "topic": f"live-{tmp_path.name[-8:]}", "schema": SCHEMA})

    assert publish_card_events(spark, tmp_path, cfg) == 30
    assert publish_card_events(spark, tmp_path, cfg) == 0  # the generate step re-run sends nothing
    sent = (spark.read.format("kafka").option("kafka.bootstrap.servers", kafka_broker)
            .option("subscribe", cfg.topic).load())
    assert sorted(r[0] for r in sent.select(F.col("value").cast("string")).collect()) == sorted(lines)
    assert sent.filter(F.col("key").cast("string") != F.get_json_object(
        F.col("value").cast("string"), "$.customer_id")).isEmpty()


@pytest.mark.kafka
def test_a_topic_that_does_not_exist_is_a_source_error_naming_it(
        spark: SparkSession, kafka_broker: str, tmp_path: Path) -> None:
    topic = f"missing-{tmp_path.name[-8:]}"
    config = make_config(tmp_path, {"events": {"format": "kafka", "bootstrap_servers": kafka_broker,
                                               "topic": topic, "schema": SCHEMA}})
    with pytest.raises(SourceError, match=f"source 'events': topic {topic} does not exist on {kafka_broker}"):
        ingest_sources(TableCatalog(spark, config.storage), config)
