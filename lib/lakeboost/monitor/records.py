"""The monitor's records: one typed row per (table, window, model version, kind, subject, metric)
of a monitor run, the schema of the monitoring table, and their idempotent upsert."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from pyspark.sql import functions as F

from lakeboost.io.catalog import TableCatalog
from lakeboost.io.hashing import with_content_hash

KEYS = ("table", "window_start", "model_version", "kind", "subject", "metric", "slice")
ALL = "all"  # the slice of every row
# The subject of the label's profile records: a name no model input can take.
LABEL_SUBJECT = "(label)"
# The monitoring table's columns, in MonitorRecord's field order (the content hash covers them in it).
SCHEMA = ("table string, window_start timestamp, model_version bigint, kind string, subject string, "
          "metric string, value double, threshold double, breached boolean, rows bigint, status string, "
          "cause string, slice string")


@dataclasses.dataclass(frozen=True)
class MonitorRecord:
    """One measurement of one window: `kind` is feature_drift | missing_data | prediction_drift |
    performance | profile | window_drift | data_quality; `subject` the feature, `score`, `label`, `model`
    or `<table>:<rule>`; `cause` is set on breached records only; `slice` is `all` (every row) or
    `<column>=<value>` (`monitor.slices`)."""

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
    slice: str = ALL

    def to_row(self) -> tuple:
        """The record as a row of SCHEMA. Its fields are scalars: no deep copy (astuple deep-copies
        every field, thousands of times a run)."""
        return tuple(getattr(self, f) for f in FIELDS)

    def as_dict(self) -> dict:
        return {f: getattr(self, f) for f in FIELDS}


FIELDS = tuple(f.name for f in dataclasses.fields(MonitorRecord))


def columns() -> tuple[str, ...]:
    """The monitoring table's record columns, in SCHEMA's order."""
    return tuple(part.split()[0] for part in SCHEMA.split(", "))


def write_records(catalog: TableCatalog, table: str, records: Sequence[MonitorRecord], *, run_id: str) -> int:
    """Upsert on KEYS: a re-run over the same data changes nothing; a window's performance is
    updated as its labels arrive."""
    if not records:
        return 0
    _add_slice_column(catalog, table)
    rows = catalog.spark.createDataFrame([r.to_row() for r in records], SCHEMA)
    # The hash covers what a record says, not its key's slice: records of tables written before
    # slices keep their hashes, and a rerun after the upgrade writes nothing.
    rows = (rows.transform(with_content_hash, columns=[c for c in columns() if c != "slice"])
            .withColumn("monitor_run_id", F.lit(run_id)).withColumn("computed_at", F.current_timestamp()))
    return catalog.upsert(rows, table, keys=KEYS, order_by=()).rows_written


def _add_slice_column(catalog: TableCatalog, table: str) -> None:
    """A monitoring table written before slices (no `slice` column) gets it, `all` on every
    existing row, so its keys still match this run's records: without it the upsert's
    schema would not match, and NULL keys would never match again (a duplicate per rerun)."""
    if not catalog.exists(table) or "slice" in catalog.read(table).columns:
        return
    ref = catalog.sql_ref(table)
    catalog.spark.sql(f"ALTER TABLE {ref} ADD COLUMNS (slice string)")
    catalog.spark.sql(f"UPDATE {ref} SET slice = '{ALL}' WHERE slice IS NULL")
