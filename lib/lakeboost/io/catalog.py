"""All table I/O: logical names (`bronze.transactions`) to Delta paths or metastore tables.

Layers never build paths. With `storage.catalog` unset a name maps to `<root>/<layer>/<table>`;
with `storage.catalog: main` it maps to the metastore table `main.<layer>.<table>`, the
Databricks medallion convention (one schema per layer).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

import lakeboost.io.conflicts as conflicts
from lakeboost.config.model import StorageConfig
from lakeboost.config.tables import FrameworkTables
from lakeboost.errors import TableNotFoundError
from lakeboost.io.conflicts import ConflictPolicy
from lakeboost.spark.fs import list_names, path_exists, read_text
from lakeboost.spark.rows import first_row
from lakeboost.spark.sql_text import quoted_name, string_literal

log = logging.getLogger(__name__)
_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
_COMMIT_FILE = re.compile(r"^(\d{20})\.json$")
T = TypeVar("T")
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


class TableCatalog:
    """Read, write and merge Delta tables by logical name.

    Concurrent writers (two ingests on one quarantine, the scorer beside refine, OPTIMIZE beside
    a MERGE): a write that Delta fails with a concurrent-modification conflict is run again when
    it is idempotent (appends, txn appends, upserts, inserts of missing keys, property changes)
    and refused with ConcurrentWriteError otherwise (overwrites), see `conflicts`. Every write
    reports the commit it made itself, found by a token in its commit, never the table's latest.
    """

    def __init__(self, spark: SparkSession, storage: StorageConfig, *,
                 conflict_policy: ConflictPolicy | None = None) -> None:
        self.spark = spark
        self.storage = storage
        self.conflict_policy = conflict_policy or ConflictPolicy()

    # -- naming -------------------------------------------------------------------------
    @property
    def tables(self) -> FrameworkTables:
        """The framework's own tables' names (`storage.tables`): `catalog.tables.training_set`."""
        return self.storage.tables

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
        versions = self._log_versions(name)
        return max(versions) if versions else None

    def _log_versions(self, name: str) -> list[int]:
        """The versions of the commit files in a path table's log."""
        return [int(m.group(1)) for n in list_names(self.spark, f"{self.path(name)}/_delta_log")
                if (m := _COMMIT_FILE.match(n))]

    def _commit_from_log(self, name: str, version: int) -> WriteResult:
        info = self._commit_info(name, version)
        return WriteResult(name, version, info.get("operation"), _counts(info.get("operationMetrics")))

    def last_user_metadata(self, name: str) -> str | None:
        """The `user_metadata` its writer gave the latest commit (None: no table, or a commit
        without it), without the writer's commit token: read from the commit file, no Spark job."""
        version = self.version(name)
        return None if version is None else conflicts.caller_text(self._commit_info(name, version).get("userMetadata"))

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
        """Write one atomic Delta commit; an append that conflicts with a concurrent commit runs
        again, an overwrite is refused (it replaces what it read).

        Args:
            txn: (application id, monotonically increasing version): Delta skips the commit
                when this pair was committed before, which makes retried batches idempotent.
            replace_where: with mode="overwrite", atomically replace only matching rows.
            user_metadata: text kept in the commit's `commitInfo.userMetadata`, beside the
                write's token (see `last_user_metadata`). A "userMetadata" in `extra_options` is
                kept as given instead, untagged: the commit is then found by that text.

        Raises:
            ConcurrentWriteError: an overwrite that conflicted, or an append still conflicting
                after the policy's attempts.
        """
        options = dict(extra_options or {})
        raw = next((str(v) for k, v in options.items() if k.lower() == "usermetadata"), None)
        token = conflicts.new_token()
        if raw is None:
            options["userMetadata"] = conflicts.tagged(token, user_metadata)
        operation = " ".join(filter(None, [
            f"{mode} write", f"(txn {txn[0]} {txn[1]})" if txn else "",
            f"(replaceWhere {replace_where})" if replace_where is not None else ""]))
        before = self.version(name)
        self.run_retrying(
            name, operation,
            lambda: self._save(df, name, mode=mode, txn=txn, merge_schema=merge_schema, partition_by=partition_by,
                               replace_where=replace_where, options=options),
            retry=mode == "append",
            refused_because="an overwrite replaces the rows it read and the concurrent commit changed them, "
                            "so running it again could undo that commit's rows")
        if raw is not None:
            return self._own_commit(name, before, lambda text: text == raw)
        return self._own_commit(name, before, lambda text: conflicts.token_of(text) == token)

    def _save(self, df: DataFrame, name: str, *, mode: str, txn: tuple[str, int] | None, merge_schema: bool,
              partition_by: tuple[str, ...], replace_where: str | None, options: dict[str, Any]) -> None:
        writer = df.write.format("delta").mode(mode)
        if txn is not None:
            writer = writer.option("txnAppId", txn[0]).option("txnVersion", txn[1])
        if merge_schema:
            writer = writer.option("mergeSchema", "true")
        if replace_where is not None:
            writer = writer.option("replaceWhere", replace_where)
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        for key, value in options.items():
            writer = writer.option(key, value)
        identifier = self.identifier(name)
        if identifier:
            self._ensure_schema(name)
            writer.saveAsTable(identifier)
        else:
            writer.save(self.path(name))

    def run_retrying(self, name: str, operation: str, attempt: Callable[[], T], *, retry: bool = True,
                     refused_because: str = "") -> T:
        """`attempt()` on table `name`, run again after a Delta conflict (when `retry`, up to the
        catalog's policy), else refused: see `conflicts.run_retrying`."""
        return conflicts.run_retrying(attempt, table=name, operation=operation, retry=retry,
                                      policy=self.conflict_policy, refused_because=refused_because)

    def _own_commit(self, name: str, before: int | None, mine: Callable[[str | None], bool]) -> WriteResult:
        """The commit after version `before` whose userMetadata is `mine`, or an empty result
        when this write made none: other writers' commits may come before and after it."""
        for version, info in self._commits_after(name, before):
            if mine(info.get("userMetadata")):
                return WriteResult(name, version, info.get("operation"), _counts(info.get("operationMetrics")))
        log.info("no new commit on %s (idempotent write skipped or nothing to change)", name)
        return WriteResult(name, None)

    def _commits_after(self, name: str, before: int | None) -> list[tuple[int, dict]]:
        """(version, commitInfo) of every commit after `before` (all when None), oldest first."""
        if not self.exists(name):
            return []
        floor = -1 if before is None else before
        if self.identifier(name):
            columns = ("version", "operation", "operationMetrics", "userMetadata")
            table = self.delta_table(name)
            rows = table.history(_HISTORY_WINDOW).filter(F.col("version") > floor).select(*columns).collect()
            if len(rows) == _HISTORY_WINDOW:  # more commits since `before` than the window holds
                rows = table.history().filter(F.col("version") > floor).select(*columns).collect()
            return sorted(((int(r["version"]), r.asDict()) for r in rows), key=lambda pair: pair[0])
        return [(v, self._commit_info(name, v)) for v in sorted(self._log_versions(name)) if v > floor]

    def _delta_table_in(self, session: SparkSession, name: str) -> DeltaTable:
        self._require(name)
        identifier = self.identifier(name)
        return DeltaTable.forName(session, identifier) if identifier else DeltaTable.forPath(session, self.path(name))

    def insert_new_rows(self, df: DataFrame, name: str, key_condition: str) -> WriteResult:
        """MERGE inserting only rows no target row matches on `key_condition` (t./s. aliases);
        run again after a conflict (the second run inserts only what is still missing)."""
        token = conflicts.new_token()
        metadata = conflicts.tagged(token, None)
        before = self.version(name)

        def attempt() -> None:
            (
                self._delta_table_in(conflicts.session_for_commit(self.spark, metadata), name).alias("t")
                .merge(df.alias("s"), key_condition)
                .withSchemaEvolution()
                .whenNotMatchedInsertAll()
                .execute()
            )

        self.run_retrying(name, f"insert of new rows (MERGE on {key_condition})", attempt)
        return self._own_commit(name, before, lambda text: conflicts.token_of(text) == token)

    def upsert(self, df: DataFrame, name: str, *, keys: tuple[str, ...], order_by: tuple[str, ...],
               hash_column: str = "_row_hash", overwrite: bool = False,
               user_metadata: str | None = None) -> WriteResult:
        """Latest-wins MERGE on `keys`; a row updates its match only if newer and different.

        `df` must hold one row per key (dedupe first: duplicate source keys make MERGE fail).
        Re-running with the same rows changes nothing: equal hashes never update, and a MERGE
        with no row to change commits nothing (so `user_metadata` is kept only by a commit).
        A conflict with a concurrent commit runs the MERGE again on the new table: the latest
        row still wins, as in a sequential run. `overwrite` writes `df` as the whole table (an
        overwrite: a conflict is refused).
        """
        if overwrite:
            return self.write(df, name, mode="overwrite", extra_options={"overwriteSchema": "true"},
                              user_metadata=user_metadata)
        token = conflicts.new_token()
        metadata = conflicts.tagged(token, user_metadata)
        before = self.version(name)
        self.run_retrying(name, f"upsert (MERGE on {', '.join(keys)})",
                          lambda: self._upsert_once(df, name, keys=keys, order_by=order_by,
                                                    hash_column=hash_column, user_metadata=metadata))
        return self._own_commit(name, before, lambda text: conflicts.token_of(text) == token)

    def _upsert_once(self, df: DataFrame, name: str, *, keys: tuple[str, ...], order_by: tuple[str, ...],
                     hash_column: str, user_metadata: str) -> None:
        if not self.exists(name):
            self._save(df, name, mode="append", txn=None, merge_schema=False, partition_by=(), replace_where=None,
                       options={"userMetadata": user_metadata})
            return
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
        (
            self._delta_table_in(conflicts.session_for_commit(self.spark, user_metadata), name).alias("t")
            .merge(effective.alias("s"), on)
            .withSchemaEvolution()
            .whenMatchedUpdateAll(condition=update_when)
            .whenNotMatchedInsertAll()
            .execute()
        )

    def set_properties(self, name: str, properties: dict[str, str], *, user_metadata: str | None = None) -> None:
        """Set table properties: a commit of metadata only (no data file changes), run again
        after a conflict."""
        self._require(name)
        target = self.identifier(name) or f"delta.{quoted_name(self.path(name))}"
        pairs = ", ".join(f"{string_literal(k)} = {string_literal(v)}" for k, v in properties.items())
        session = self.spark if user_metadata is None else conflicts.session_for_commit(self.spark, user_metadata)
        self.run_retrying(name, "SET TBLPROPERTIES",
                          lambda: session.sql(f"ALTER TABLE {target} SET TBLPROPERTIES ({pairs})"))

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
