"""A Delta table's commits: its versions, what each commit did, and which one a write made.

A path table's commits come from its `_delta_log` directory: one listing and one small file,
where DeltaTable.history runs a Spark job (about 0.3 s on every write, twice per write).
Metastore tables, and a log without commit files, use history: DeltaTable.history on a classic
session, `DESCRIBE HISTORY` on Spark Connect (Delta's Python DeltaTable needs delta-connect there,
which has no release for this Spark; its SQL works on any session).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeboost.spark.fs import list_names, read_text
from lakeboost.spark.kind import is_connect
from lakeboost.spark.rows import first_row
from lakeboost.spark.sql_text import quoted_name

log = logging.getLogger(__name__)
_COMMIT_FILE = re.compile(r"^(\d{20})\.json$")
_HISTORY_WINDOW = 50  # a metastore table's commits read at once to find a write's own commit


@dataclass(frozen=True)
class WriteResult:
    """What one Delta commit did; `version` is None when an idempotent write was skipped."""

    table: str
    version: int | None
    operation: str | None = None
    metrics: dict[str, int] = field(default_factory=dict)

    @property
    def rows_written(self) -> int:
        m = self.metrics
        if "numTargetRowsInserted" in m:
            return m.get("numTargetRowsInserted", 0) + m.get("numTargetRowsUpdated", 0)
        return m.get("numOutputRows", 0)


class CommitLog:
    """The commits of the table `name` at `path`, or of the metastore table `identifier` (when
    given: its history, not the files)."""

    def __init__(self, spark: SparkSession, name: str, *, path: str, identifier: str | None) -> None:
        self.spark = spark
        self.name = name
        self.path = path
        self.identifier = identifier

    def delta_table(self) -> DeltaTable:
        return (DeltaTable.forName(self.spark, self.identifier) if self.identifier
                else DeltaTable.forPath(self.spark, self.path))

    def sql_ref(self) -> str:
        return self.identifier or f"delta.{quoted_name(self.path)}"

    def history(self, limit: int | None = None) -> DataFrame:
        """The table's history, newest first (the latest `limit` commits when given)."""
        if is_connect(self.spark):
            return self.spark.sql(f"DESCRIBE HISTORY {self.sql_ref()}" + (f" LIMIT {int(limit)}" if limit else ""))
        table = self.delta_table()
        return table.history(limit) if limit else table.history()

    def latest_file(self) -> int | None:
        """The latest commit file's version; None for a metastore table or a log without commit files."""
        if self.identifier:
            return None
        versions = self.file_versions()
        return max(versions) if versions else None

    def file_versions(self) -> list[int]:
        """The versions of the commit files in a path table's log."""
        return [int(m.group(1)) for n in list_names(self.spark, f"{self.path}/_delta_log")
                if (m := _COMMIT_FILE.match(n))]

    def latest_from_history(self) -> WriteResult:
        row = first_row(self.history(1).select("version", "operation", "operationMetrics"))
        return WriteResult(self.name, int(row["version"]), row["operation"], counts(row["operationMetrics"]))

    def result(self, version: int) -> WriteResult:
        info = self.info(version)
        return WriteResult(self.name, version, info.get("operation"), counts(info.get("operationMetrics")))

    def info(self, version: int) -> dict:
        """The commit's commitInfo (operation, operationParameters, operationMetrics); {} if none."""
        if self.identifier:
            rows = (self.history().filter(F.col("version") == version)
                    .select("operation", "operationParameters", "operationMetrics", "userMetadata").collect())
            return rows[0].asDict() if rows else {}
        text = read_text(self.spark, f"{self.path}/_delta_log/{version:020d}.json")
        for line in text.splitlines():
            action = json.loads(line) if line.strip() else {}
            if "commitInfo" in action:
                return dict(action["commitInfo"])
        return {}

    def after(self, before: int | None) -> list[tuple[int, dict]]:
        """(version, commitInfo) of every commit after `before` (all when None), oldest first."""
        floor = -1 if before is None else before
        if self.identifier:
            if not self.spark.catalog.tableExists(self.identifier):
                return []
            columns = ("version", "operation", "operationMetrics", "userMetadata")
            rows = self.history(_HISTORY_WINDOW).filter(F.col("version") > floor).select(*columns).collect()
            if len(rows) == _HISTORY_WINDOW:  # more commits since `before` than the window holds
                rows = self.history().filter(F.col("version") > floor).select(*columns).collect()
            return sorted(((int(r["version"]), r.asDict()) for r in rows), key=lambda pair: pair[0])
        return [(v, self.info(v)) for v in sorted(self.file_versions()) if v > floor]

    def own_commit(self, before: int | None, mine: Callable[[str | None], bool]) -> WriteResult:
        """The commit after version `before` whose userMetadata is `mine`, or an empty result
        when this write made none: other writers' commits may come before and after it."""
        for version, info in self.after(before):
            if mine(info.get("userMetadata")):
                return WriteResult(self.name, version, info.get("operation"), counts(info.get("operationMetrics")))
        log.info("no new commit on %s (idempotent write skipped or nothing to change)", self.name)
        return WriteResult(self.name, None)


def counts(operation_metrics: dict | None) -> dict[str, int]:
    """A commit's numeric operation metrics (Delta records them as strings)."""
    return {k: int(v) for k, v in (operation_metrics or {}).items() if str(v).isdigit()}
