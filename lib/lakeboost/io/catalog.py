"""All table I/O: logical names (`bronze.transactions`) to Delta paths or metastore tables.

Layers never build paths. With `storage.catalog` unset a name maps to `<root>/<layer>/<table>`;
with `storage.catalog: main` it maps to the metastore table `main.<layer>.<table>`, the
Databricks medallion convention (one schema per layer).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeboost.config.model import StorageConfig
from lakeboost.errors import TableNotFoundError
from lakeboost.spark.fs import list_names, path_exists, read_text
from lakeboost.spark.rows import first_row
from lakeboost.spark.sql_text import quoted_name, string_literal

log = logging.getLogger(__name__)
_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
_COMMIT_FILE = re.compile(r"^(\d{20})\.json$")


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


class TableCatalog:
    """Read, write and merge Delta tables by logical name."""

    def __init__(self, spark: SparkSession, storage: StorageConfig) -> None:
        self.spark = spark
        self.storage = storage

    # -- naming -------------------------------------------------------------------------
    def _split(self, name: str) -> tuple[str, str]:
        if not _NAME.match(name):
            raise ValueError(f"table name {name!r} must be '<layer>.<table>' in snake_case")
        layer, table = name.split(".")
        return layer, table

    def path(self, name: str) -> str:
        layer, table = self._split(name)
        return f"{self.storage.root.rstrip('/')}/{layer}/{table}"

    def identifier(self, name: str) -> str | None:
        """The metastore identifier, or None in path mode."""
        if not self.storage.catalog:
            return None
        layer, table = self._split(name)
        return f"{self.storage.catalog}.{layer}.{table}"

    def checkpoint(self, name: str, purpose: str) -> str:
        layer, table = self._split(name)
        return f"{self.storage.root.rstrip('/')}/_checkpoints/{purpose}/{layer}/{table}"

    def sql_ref(self, name: str) -> str:
        """A reference usable in SQL text: `main.bronze.t` or delta.`/path`."""
        return self.identifier(name) or f"delta.`{self.path(name)}`"

    # -- reading ------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        identifier = self.identifier(name)
        if identifier:
            return bool(self.spark.catalog.tableExists(identifier))
        # A commit (or checkpoint) file in the Delta log on the filesystem, not isDeltaTable:
        # that caches a "no" for the session, so a table another process created later stayed
        # invisible. The log directory alone is there before the first commit lands.
        return path_exists(self.spark, f"{self.path(name)}/_delta_log/0*")

    def delta_table(self, name: str) -> DeltaTable:
        self._require(name)
        identifier = self.identifier(name)
        return DeltaTable.forName(self.spark, identifier) if identifier else DeltaTable.forPath(
            self.spark, self.path(name))

    def read(self, name: str, version: int | None = None) -> DataFrame:
        """The table as a DataFrame, optionally at an older version (time travel)."""
        self._require(name)
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        identifier = self.identifier(name)
        return reader.table(identifier) if identifier else reader.load(self.path(name))

    def read_changes(self, name: str, start_version: int, end_version: int) -> DataFrame:
        """Rows changed between two versions (inclusive), from the Delta change data feed."""
        self._require(name)
        reader = (
            self.spark.read.format("delta").option("readChangeFeed", "true")
            .option("startingVersion", start_version).option("endingVersion", end_version)
        )
        identifier = self.identifier(name)
        return reader.table(identifier) if identifier else reader.load(self.path(name))

    def read_stream(self, name: str, **options: str) -> DataFrame:
        self._require(name)
        reader = self.spark.readStream.format("delta").options(**options)
        identifier = self.identifier(name)
        return reader.table(identifier) if identifier else reader.load(self.path(name))

    def version(self, name: str) -> int | None:
        """Latest committed version, or None when the table does not exist."""
        latest = self._latest_commit_file(name)
        if latest is not None:
            return latest
        if not self.exists(name):
            return None
        return int(first_row(self.delta_table(name).history(1).select("version"))[0])

    def last_commit(self, name: str) -> WriteResult:
        latest = self._latest_commit_file(name)
        if latest is not None:
            return self._commit_from_log(name, latest)
        row = first_row(self.delta_table(name).history(1).select("version", "operation", "operationMetrics"))
        return WriteResult(name, int(row["version"]), row["operation"], _counts(row["operationMetrics"]))

    def content_version(self, name: str, version: int | None = None) -> int | None:
        """The oldest version whose data `version` (default: the latest) has: a RESTORE commit
        holds the data of the version it restored (a rolled-back bad write), so the chain of
        restores is followed back. Whether something built from a table is still current is a
        question about its data, not about how many commits it went through.

        A restore given a timestamp, not a version, is taken as data of its own.
        """
        current = self.version(name) if version is None else version
        while current is not None:
            info = self._commit_info(name, current)
            restored = (info.get("operationParameters") or {}).get("version")
            if info.get("operation") != "RESTORE" or restored in (None, "null") or int(restored) >= current:
                return current
            current = int(restored)
        return None

    # A path table's version and last commit come from its _delta_log directory: one listing
    # and one small file, where DeltaTable.history runs a Spark job (about 0.3 s on every write,
    # twice per write). Metastore tables, and a log without commit files, use history.
    def _latest_commit_file(self, name: str) -> int | None:
        if self.identifier(name):
            return None
        versions = [int(m.group(1)) for n in list_names(self.spark, f"{self.path(name)}/_delta_log")
                    if (m := _COMMIT_FILE.match(n))]
        return max(versions) if versions else None

    def _commit_from_log(self, name: str, version: int) -> WriteResult:
        info = self._commit_info(name, version)
        return WriteResult(name, version, info.get("operation"), _counts(info.get("operationMetrics")))

    def last_user_metadata(self, name: str) -> str | None:
        """The latest commit's `userMetadata` (None: no table, or a commit without it): read from
        the commit file, no Spark job."""
        version = self.version(name)
        return None if version is None else self._commit_info(name, version).get("userMetadata")

    def _commit_info(self, name: str, version: int) -> dict:
        """The commit's commitInfo (operation, operationParameters, operationMetrics); {} if none."""
        if self.identifier(name):
            rows = (self.delta_table(name).history().filter(F.col("version") == version)
                    .select("operation", "operationParameters", "operationMetrics", "userMetadata").collect())
            return rows[0].asDict() if rows else {}
        text = read_text(self.spark, f"{self.path(name)}/_delta_log/{version:020d}.json")
        for line in text.splitlines():
            action = json.loads(line) if line.strip() else {}
            if "commitInfo" in action:
                return dict(action["commitInfo"])
        return {}

    def _require(self, name: str) -> None:
        if not self.exists(name):
            where = self.identifier(name) or self.path(name)
            raise TableNotFoundError(
                f"table {name} ({where}) does not exist yet; run the step that writes it first")

    # -- writing ------------------------------------------------------------------------
    def _ensure_schema(self, name: str) -> None:
        identifier = self.identifier(name)
        if identifier:
            self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {identifier.rsplit('.', 1)[0]}")

    def write(
        self,
        df: DataFrame,
        name: str,
        *,
        mode: str = "append",
        txn: tuple[str, int] | None = None,
        merge_schema: bool = False,
        partition_by: tuple[str, ...] = (),
        replace_where: str | None = None,
        extra_options: dict[str, Any] | None = None,
        user_metadata: str | None = None,
    ) -> WriteResult:
        """Write one atomic Delta commit.

        Args:
            txn: (application id, monotonically increasing version): Delta skips the commit
                when this pair was committed before, which makes retried batches idempotent.
            replace_where: with mode="overwrite", atomically replace only matching rows.
            user_metadata: text kept in the commit's `commitInfo.userMetadata` (see
                `last_user_metadata`).
        """
        before = self.version(name)
        writer = df.write.format("delta").mode(mode)
        if user_metadata is not None:
            writer = writer.option("userMetadata", user_metadata)
        if txn is not None:
            writer = writer.option("txnAppId", txn[0]).option("txnVersion", txn[1])
        if merge_schema:
            writer = writer.option("mergeSchema", "true")
        if replace_where is not None:
            writer = writer.option("replaceWhere", replace_where)
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        for key, value in (extra_options or {}).items():
            writer = writer.option(key, value)
        identifier = self.identifier(name)
        if identifier:
            self._ensure_schema(name)
            writer.saveAsTable(identifier)
        else:
            writer.save(self.path(name))
        return self.result_since(name, before)

    def result_since(self, name: str, before: int | None) -> WriteResult:
        """The commit made since version `before`, or an empty result when there was none."""
        commit = self.last_commit(name) if self.exists(name) else None  # one history read, not two
        if commit is None or commit.version == before:
            log.info("no new commit on %s (idempotent write skipped or nothing to change)", name)
            return WriteResult(name, None)
        return commit

    def insert_new_rows(self, df: DataFrame, name: str, key_condition: str) -> WriteResult:
        """MERGE inserting only rows no target row matches on `key_condition` (t./s. aliases)."""
        before = self.version(name)
        (
            self.delta_table(name).alias("t")
            .merge(df.alias("s"), key_condition)
            .withSchemaEvolution()
            .whenNotMatchedInsertAll()
            .execute()
        )
        return self.result_since(name, before)

    def upsert(self, df: DataFrame, name: str, *, keys: tuple[str, ...], order_by: tuple[str, ...],
               hash_column: str = "_row_hash", overwrite: bool = False,
               user_metadata: str | None = None) -> WriteResult:
        """Latest-wins MERGE on `keys`; a row updates its match only if newer and different.

        `df` must hold one row per key (dedupe first: duplicate source keys make MERGE fail).
        Re-running with the same rows changes nothing: equal hashes never update, and a MERGE
        with no row to change commits nothing (so `user_metadata` is kept only by a commit).
        """
        if overwrite or not self.exists(name):
            return self.write(df, name, mode="overwrite" if overwrite else "append",
                              extra_options={"overwriteSchema": "true"} if overwrite else None,
                              user_metadata=user_metadata)
        before = self.version(name)
        on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
        changed = f"NOT (t.`{hash_column}` <=> s.`{hash_column}`)"
        # Without an ordering the source is the truth: any different row replaces its match.
        update_when = f"{changed} AND ({newer_condition(order_by, hash_column)})" if order_by else changed
        # Only rows that will insert or update may reach the MERGE: Delta rewrites every file
        # holding a matched row even when the update condition is false, so a re-run would
        # otherwise rewrite the table and commit a version that changes nothing.
        current = self.read(name).select(*keys, *[c for c in (*order_by, hash_column) if c not in keys])
        effective = (
            df.alias("s").join(current.alias("t"), on=F.expr(on), how="left")
            .filter(F.expr(f"t.`{hash_column}` IS NULL OR ({update_when})"))
            .select("s.*")
        )
        merge = (
            self.delta_table(name).alias("t")
            .merge(effective.alias("s"), on)
            .withSchemaEvolution()
            .whenMatchedUpdateAll(condition=update_when)
            .whenNotMatchedInsertAll()
        )
        with self._commit_user_metadata(user_metadata):
            merge.execute()
        return self.result_since(name, before)

    def set_properties(self, name: str, properties: dict[str, str], *, user_metadata: str | None = None) -> None:
        """Set table properties: a commit of metadata only (no data file changes)."""
        self._require(name)
        target = self.identifier(name) or f"delta.{quoted_name(self.path(name))}"
        pairs = ", ".join(f"{string_literal(k)} = {string_literal(v)}" for k, v in properties.items())
        with self._commit_user_metadata(user_metadata):
            self.spark.sql(f"ALTER TABLE {target} SET TBLPROPERTIES ({pairs})")

    @contextmanager
    def _commit_user_metadata(self, text: str | None) -> Iterator[None]:
        """DeltaTable's MERGE takes no writer options: its commit's userMetadata comes from the
        session conf, set for the block only."""
        key = "spark.databricks.delta.commitInfo.userMetadata"
        if text is None:
            yield
            return
        previous = self.spark.conf.get(key, None)
        self.spark.conf.set(key, text)
        try:
            yield
        finally:
            if previous is None:
                self.spark.conf.unset(key)
            else:
                self.spark.conf.set(key, previous)


def newer_condition(order_by: tuple[str, ...], hash_column: str) -> str:
    """SQL: source row s sorts after target row t by (order_by..., hash) — the latest wins."""
    clauses: list[str] = []
    equal_so_far: list[str] = []
    for column in (*order_by, hash_column):
        s_col, t_col = f"s.`{column}`", f"t.`{column}`"
        greater = f"({s_col} > {t_col} OR ({t_col} IS NULL AND {s_col} IS NOT NULL))"
        clauses.append(" AND ".join([*equal_so_far, greater]))
        equal_so_far.append(f"{s_col} <=> {t_col}")
    return " OR ".join(f"({c})" for c in clauses)


def _counts(operation_metrics: dict | None) -> dict[str, int]:
    """A commit's numeric operation metrics (Delta records them as strings)."""
    return {k: int(v) for k, v in (operation_metrics or {}).items() if str(v).isdigit()}
