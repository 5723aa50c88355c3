"""A small application for the features step: a config directory loaded like a user's (so
`--set` overrides edit it as they would), and its silver inputs written as Delta tables.

Events of three customers over eight days with a late-known outcome (`settled`, known at
`settled_at`) and presence labels (`silver.cbs`, known at `reported_at`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from lakeboost.config import LakeboostConfig, load_config
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from tests.helpers import job_conf_dir

REPO = Path(__file__).resolve().parents[2]
EVENTS = "txn_id string, customer_id int, merchant_id string, event_time timestamp, amount double, " \
         "settled double, settled_at timestamp"
LABELS = "txn_id string, reported_at timestamp"
START = dt.datetime(2026, 1, 1)

APPLICATION = {
    "sources": {
        "events": {"format": "json", "path": "events", "schema": {"txn_id": "string"}},
        "cbs": {"format": "json", "path": "cbs", "schema": {"txn_id": "string"}},
    },
    "silver": {"tables": {
        "events": {"source": "bronze.events", "keys": ["txn_id"], "columns": {"txn_id": {"type": "string"}}},
        "cbs": {"source": "bronze.cbs", "keys": ["txn_id"], "columns": {"txn_id": {"type": "string"}}},
    }},
    "dataset": {
        "events": "silver.events", "key": "txn_id", "event_time": "event_time", "date_column": "event_date",
        "label": {"kind": "presence", "column": "label", "table": "silver.cbs", "available_at": "reported_at"},
        "outcomes": {"settled": "settled_at"},
    },
    "gold": {
        "features": {"feats": {
            "passthrough": ["amount"],
            "groups": {"cust": {"entity": "customer_id", "windows": ["1d"], "aggs": {"amount": ["sum"]}}},
            "outcome_windows": {"cust_settled": {"entity": "customer_id", "windows": ["2d"],
                                                 "aggs": {"settled": ["sum"]}}},
            "label_rates": {"merch_cb": {"entity": "merchant_id", "window": "2d"}},
        }},
        # warm_up 0s: the training set is rebuilt here because its feature table changed, not
        # because a longer window changed its own (auto) warm-up.
        "training_set": {"features": "gold.feats", "label_maturity": "1d", "warm_up": "0s",
                         "exclude": ["customer_id", "merchant_id"], "max_single_feature_auc": 1.0},
    },
}


def conf_dir(tmp_path: Path, *, training_set: bool = True) -> Path:
    """A config directory (base + local) whose lakehouse is tmp_path/lake; Spark as the suite's
    jobs run it (one core, few partitions)."""
    app = {**APPLICATION, "gold": dict(APPLICATION["gold"])}
    if not training_set:
        del app["gold"]["training_set"]
    return job_conf_dir(tmp_path / "conf", tmp_path, app)


def config(conf: Path, *overrides: str) -> LakeboostConfig:
    return load_config("local", list(overrides), conf_dir=conf)


def at(day: int, hour: int) -> dt.datetime:
    return START + dt.timedelta(days=day - 1, hours=hour)


def events(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, EVENTS).withColumn("event_date", F.to_date("event_time"))


def daily_events(spark: SparkSession, days: int = 8) -> DataFrame:
    """One event per customer a day; each settles a day and a half later (the last days' not yet)."""
    rows = [(f"T{d}{c}", c, f"M{c % 2}", at(d, 8 + c), float(10 * d + c), float(d),
             at(d, 20 + c) + dt.timedelta(days=1) if d < days - 1 else None)
            for d in range(1, days + 1) for c in range(3)]
    return events(spark, rows)


def labels(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, LABELS)


def write_inputs(spark: SparkSession, cfg: LakeboostConfig) -> None:
    from lakeboost.io import TableCatalog

    catalog = TableCatalog(spark, cfg.storage)
    catalog.write(daily_events(spark), "silver.events")
    catalog.write(labels(spark, [("T10", at(2, 12)), ("T41", at(5, 9)), ("T52", at(7, 1))]), "silver.cbs")
