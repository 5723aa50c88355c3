"""The monitor's records: one typed row per (table, window, model version, kind, subject, metric)
of a monitor run, the schema of the monitoring table, and their idempotent upsert."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from pyspark.sql import functions as F

from lakeboost.io.catalog import TableCatalog
from lakeboost.io.hashing import with_content_hash

KEYS = ("table", "window_start", "model_version", "kind", "subject", "metric")
# The monitoring table's columns, in MonitorRecord's field order (the content hash covers them in it).
SCHEMA = ("table string, window_start timestamp, model_version bigint, kind string, subject string, "
          "metric string, value double, threshold double, breached boolean, rows bigint, status string, "
          "cause string")


@dataclasses.dataclass(frozen=True)
class MonitorRecord:
    """One measurement of one window: `kind` is feature_drift | missing_data | prediction_drift |
    performance | data_quality; `subject` the feature, `score`, `model` or `<table>:<rule>`; `cause` is set on
    breached records only."""

    table: str
    window_start: dt.datetime | None
    model_version: int | None
    kind: str
    subject: str
    metric: str
    value: float | None
    threshold: float | None
    breached: bool
    rows: int
    status: str = "ok"
    cause: str | None = None

    def to_row(self) -> tuple:
        """The record as a row of SCHEMA."""
        return dataclasses.astuple(self)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def columns() -> tuple[str, ...]:
    """The monitoring table's record columns, in SCHEMA's order."""
    return tuple(part.split()[0] for part in SCHEMA.split(", "))


def write_records(catalog: TableCatalog, table: str, records: Sequence[MonitorRecord], *, run_id: str) -> int:
    """Upsert on KEYS: a re-run over the same data changes nothing; a window's performance is
    updated as its labels arrive."""
    if not records:
        return 0
    rows = catalog.spark.createDataFrame([r.to_row() for r in records], SCHEMA)
    rows = (rows.transform(with_content_hash, columns=list(columns()))
            .withColumn("monitor_run_id", F.lit(run_id)).withColumn("computed_at", F.current_timestamp()))
    return catalog.upsert(rows, table, keys=KEYS, order_by=()).rows_written
