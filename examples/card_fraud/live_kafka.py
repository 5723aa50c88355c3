"""The demo's live card events sent through Kafka, when its `card_events` source is a Kafka topic.

The generator writes the live events as JSON-lines files either way (they stay the demo's record
of what was sent); with `--env local+kafka` the generate step also publishes them, keyed by
customer, to the source's topic with Spark's Kafka sink, in event-time order within each file.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lakeboost.config.model import KafkaSourceConfig
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

log = logging.getLogger(__name__)


def topic_records(spark: SparkSession, cfg: KafkaSourceConfig) -> int:
    """How many records the source's topic holds now (a batch read from earliest to latest; 0
    when the topic does not exist yet: a pattern matching only it, where `subscribe` would fail)."""
    assert cfg.topic is not None, "the demo publishes to one topic (`topic`, not `topic_pattern`)"
    return (spark.read.format("kafka").option("kafka.bootstrap.servers", cfg.bootstrap_servers)
            .option("subscribePattern", f"\\Q{cfg.topic}\\E").options(**cfg.options).load().count())


def publish_card_events(spark: SparkSession, landing: str | Path, cfg: KafkaSourceConfig) -> int:
    """Send the landing zone's live event lines to the topic, unless it holds records already
    (the generate step is idempotent: re-running it must not send the events twice). Returns
    the number of records sent."""
    held = topic_records(spark, cfg)
    if held:
        log.info("topic %s already holds %d records: the live events are not sent again", cfg.topic, held)
        return 0
    lines = spark.read.text(str(Path(landing) / "card_events")).filter(F.trim("value") != "")
    records = lines.select(F.get_json_object("value", "$.customer_id").alias("key"), "value")
    (records.write.format("kafka").option("kafka.bootstrap.servers", cfg.bootstrap_servers)
     .option("topic", cfg.topic).options(**cfg.options).save())
    sent = topic_records(spark, cfg)
    log.info("sent %d live card events to Kafka topic %s", sent, cfg.topic)
    return sent
