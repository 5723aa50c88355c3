"""What live micro-batches read, kept across them in memory: the history the feature windows
reach into, the keys already scored, and the small tables the batch joins.

Every micro-batch used to rebuild it from Delta: a snapshot of `dataset.events`, of the live
events table and of the predictions table (each of which this stream appends to, so each
batch replayed a longer log and scanned more files), of the integration's and as-of joins'
dimension tables and of the labels, then the same scans again in each of the batch's jobs.
Here each is read once, materialized with `localCheckpoint` (a plan of its own, which the
stream's appends to the same table do not invalidate, unlike `cache()`: a Delta write
re-caches every cached plan that reads the table), and then grows by exactly the rows the
stream itself commits: the live events table by the batch's new events, the scored keys by
the batch's predictions. Delta stays the truth: every part records the table version it
reflects, each batch checks the tables' latest versions (a listing of their logs), and a
table that moved by anything but this stream's own commit (a batch refine appending events,
another writer, a restart) is read again. A restart therefore starts from Delta, and a
micro-batch sees exactly the rows a read of Delta would give it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import reduce

from pyspark.sql import DataFrame

from lakeboost.io.catalog import TableCatalog
from lakeboost.io.commits import WriteResult

log = logging.getLogger(__name__)
# Appended parts kept apart before they are merged into one: each adds a branch to every plan
# that reads the table (the task binaries grew by 37 KiB a micro-batch under 16). Merging copies
# only the stream's own rows, never the table as read.
MAX_APPENDED = 4


def materialized(df: DataFrame) -> DataFrame:
    """`df` computed now and held by the executors, under a plan of its own (no lineage)."""
    return df.localCheckpoint(eager=True)


@dataclass
class TablePart:
    """A table as of `version` (None: the table does not exist yet) plus rows appended since."""

    version: int | None
    parts: list[DataFrame] = field(default_factory=list)
    columns: frozenset[str] | None = None  # those kept; None: all

    def holds(self, columns: list[str] | None) -> bool:
        return self.columns is None or (columns is not None and set(columns) <= self.columns)

    def frame(self, columns: list[str] | None = None) -> DataFrame | None:
        """The rows (`columns` of them), appended parts lacking a column giving NULL."""
        if not self.parts:
            return None
        selected = [p.select(*columns) for p in self.parts] if columns else self.parts
        return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), selected)


class LiveState:
    """The state of one stream scoring query (see the module's docstring)."""

    def __init__(self, catalog: TableCatalog, *, live_table: str, predictions: str) -> None:
        self.catalog = catalog
        self.live_table, self.predictions = live_table, predictions
        self.tables: dict[str, TablePart] = {}
        self.reads = 0  # tables (re)read from Delta: a test's proof that the state was reused

    def __getstate__(self) -> dict:
        # Sent to a Spark Connect server's Python worker with the batch function: empty, the
        # worker reads its own from Delta.
        return {**self.__dict__, "tables": {}, "reads": 0}

    # -- refreshing -----------------------------------------------------------------------
    def table(self, name: str, columns: list[str] | None = None) -> TablePart:
        """`name` as of its latest version (only `columns`, those it has; None: all), read from
        Delta only when it moved since or the columns kept do not cover `columns`."""
        latest = self.catalog.version(name)
        part = self.tables.get(name)
        if part is None or part.version != latest or not part.holds(columns):
            rows = []
            if latest is not None:
                read = self.catalog.read(name, version=latest)
                kept = [c for c in columns if c in read.columns] if columns else read.columns
                rows = [materialized(read.select(*kept))]
                self.reads += 1
            log.info("live state: read %s at version %s", name, latest)
            part = self.tables[name] = TablePart(latest, rows, frozenset(columns) if columns else None)
        return part

    def appended(self, name: str, result: WriteResult, rows: DataFrame) -> None:
        """The stream committed `rows` (materialized) to `name` as `result`: the next commit after
        the one the state holds, or the state is read again next time."""
        part = self.tables.get(name)
        if part is None or result.version is None:  # not kept, or the txn skipped the write
            return
        expected = 0 if part.version is None else part.version + 1
        if result.version != expected:  # another writer's commit came between
            del self.tables[name]
            return
        part.version = result.version
        part.parts.append(rows)
        if len(part.parts) > 1 + MAX_APPENDED:  # the table as read, then the merged appends
            appended = TablePart(part.version, part.parts[1:]).frame()
            assert appended is not None
            part.parts = [part.parts[0], materialized(appended)]

    # -- what a batch reads -----------------------------------------------------------------
    def past_events(self, events: str, columns: list[str]) -> DataFrame:
        """`columns` of the batch events (`events`: dataset.events) and of the live events table,
        the rows Delta has (score.live_features.past_events reads the same from Delta)."""
        batch_events = self.table(events, columns).frame(columns)  # its columns the batches read
        if batch_events is None:
            return self.catalog.read(events)  # the catalog's error: no such table
        live = self.table(self.live_table).frame(columns)
        return batch_events if live is None else batch_events.unionByName(live)

    def written_keys(self, key: list[str]) -> DataFrame | None:
        """Keys already in the live events table."""
        return self.table(self.live_table).frame(key)

    def scored(self, key: list[str]) -> DataFrame | None:
        """The keys of the predictions table: the events scored already."""
        return self.table(self.predictions, key).frame(key)

    def release(self) -> None:
        self.tables.clear()

    def static(self, name: str) -> DataFrame:
        """A table the stream only reads (a dimension, the labels) as of its latest version."""
        whole = self.table(name).frame()
        return self.catalog.read(name) if whole is None else whole  # the catalog's error when missing


class StateCatalog(TableCatalog):
    """The catalog a micro-batch reads through: the latest versions of the `static` tables
    (the integration's and as-of joins' dimensions, the labels) come from the state."""

    def __init__(self, catalog: TableCatalog, state: LiveState, static: set[str]) -> None:
        super().__init__(catalog.spark, catalog.storage, conflict_policy=catalog.conflict_policy)
        self.state, self.static_tables = state, frozenset(static)

    def read(self, name: str, version: int | None = None) -> DataFrame:
        if version is None and name in self.static_tables:
            return self.state.static(name)
        return super().read(name, version)
