"""All table I/O: logical names (`bronze.transactions`) to Delta paths or metastore tables.

Layers never build paths. With `storage.catalog` unset a name maps to `<root>/<layer>/<table>`;
with `storage.catalog: main` it maps to the metastore table `main.<layer>.<table>`, the
Databricks medallion convention (one schema per layer). A table's commits (its versions, the
commit a write made) are read by io.commits; the MERGEs are io.merge.

On Spark Connect (`spark.kind.is_connect`) the Delta operations that go through Delta's Python
DeltaTable on a classic session (MERGE, history) go through Delta's SQL instead, over a temporary
view of the source rows; files go through spark/fs.py's pyarrow path. The choice follows the
session, once per catalog.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

import lakeboost.io.conflicts as conflicts
from lakeboost.config.model import StorageConfig
from lakeboost.config.tables import FrameworkTables
from lakeboost.errors import TableNotFoundError
from lakeboost.io.commits import CommitLog, WriteResult
from lakeboost.io.conflicts import ConflictPolicy
from lakeboost.io.hashing import ROW_HASH
from lakeboost.io.merge import insert_missing, insert_missing_sql, latest_rows, merge_latest, merge_latest_sql
from lakeboost.spark.fs import path_exists
from lakeboost.spark.kind import is_connect, unavailable_on_connect
from lakeboost.spark.rows import first_row
from lakeboost.spark.sql_text import quoted_name, string_literal

log = logging.getLogger(__name__)
_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
T = TypeVar("T")


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
        # Delta through SQL where the Python DeltaTable needs a JVM in this process.
        self.connect = is_connect(spark)

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
        if self.connect:
            raise unavailable_on_connect(f"Delta's Python DeltaTable (table {name})",
                                         "Use TableCatalog.history/merge_sql, or Delta's SQL on catalog.sql_ref(name).")
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
        latest = self._log(name).latest_file()
        if latest is not None:
            return latest
        if not self.exists(name):
            return None
        return int(first_row(self.history(name, 1).select("version"))[0])

    def history(self, name: str, limit: int | None = None) -> DataFrame:
        """The table's history (Delta's DESCRIBE HISTORY), newest first; the latest `limit` commits when given."""
        self._require(name)
        return self._log(name).history(limit)

    def last_commit(self, name: str) -> WriteResult:
        commits = self._log(name)
        latest = commits.latest_file()
        if latest is not None:
            return commits.result(latest)
        self._require(name)
        return commits.latest_from_history()

    def content_version(self, name: str, version: int | None = None) -> int | None:
        """The oldest version whose data `version` (default: the latest) has: a RESTORE commit
        holds the data of the version it restored (a rolled-back bad write), so the chain of
        restores is followed back. Whether something built from a table is still current is a
        question about its data, not about how many commits it went through.

        A restore given a timestamp, not a version, is taken as data of its own.
        """
        current = self.version(name) if version is None else version
        while current is not None:
            info = self._log(name).info(current)
            restored = (info.get("operationParameters") or {}).get("version")
            if info.get("operation") != "RESTORE" or restored in (None, "null") or int(restored) >= current:
                return current
            current = int(restored)
        return None

    def last_user_metadata(self, name: str) -> str | None:
        """The `user_metadata` its writer gave the latest commit (None: no table, or a commit
        without it), without the writer's commit token: read from the commit file, no Spark job."""
        version = self.version(name)
        return None if version is None else conflicts.caller_text(self._log(name).info(version).get("userMetadata"))

    def _log(self, name: str) -> CommitLog:
        """The table's commits (io.commits): from its log files, or a metastore table's history."""
        return CommitLog(self.spark, name, path=self.path(name), identifier=self.identifier(name))

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
        """The commit after version `before` whose userMetadata is `mine` (CommitLog.own_commit)."""
        return self._log(name).own_commit(before, mine)

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
            if self.connect:
                self.merge_sql(name, df, lambda target, source: insert_missing_sql(target, source, key_condition),
                               user_metadata=metadata)
                return
            insert_missing(self._delta_table_in(conflicts.session_for_commit(self.spark, metadata), name), df,
                           key_condition)

        self.run_retrying(name, f"insert of new rows (MERGE on {key_condition})", attempt)
        return self._own_commit(name, before, lambda text: conflicts.token_of(text) == token)

    def upsert(self, df: DataFrame, name: str, *, keys: tuple[str, ...], order_by: tuple[str, ...],
               hash_column: str = ROW_HASH, overwrite: bool = False,
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
        current = self.read(name).select(*keys, *[c for c in (*order_by, hash_column) if c not in keys])
        if self.connect:
            on, update_when, effective = latest_rows(df, current, keys=keys, order_by=order_by,
                                                     hash_column=hash_column)
            self.merge_sql(name, effective,
                           lambda target, source: merge_latest_sql(target, source, on=on, update_when=update_when),
                           user_metadata=user_metadata)
            return
        target = self._delta_table_in(conflicts.session_for_commit(self.spark, user_metadata), name)
        merge_latest(target, df, current, keys=keys, order_by=order_by, hash_column=hash_column)

    def merge_sql(self, name: str, source: DataFrame, statement: Callable[[str, str], str], *,
                  user_metadata: str | None = None) -> None:
        """Run the SQL `statement(target reference, source view)` (a MERGE) with `source` as a
        temporary view, in a session of its own whose commits carry `user_metadata` when given.
        No retry here: callers wrap it in `run_retrying` when it is idempotent."""
        self._require(name)
        view = f"lakeboost_source_{uuid.uuid4().hex}"
        source.createOrReplaceTempView(view)
        try:
            # The commit's session is created after the view: a Connect clone takes the views along.
            session = self.spark if user_metadata is None else conflicts.session_for_commit(self.spark, user_metadata)
            try:
                session.sql(statement(self.sql_ref(name), view))
            finally:
                if session is not self.spark:
                    conflicts.release_commit_session(session)
        finally:
            self.spark.catalog.dropTempView(view)

    def set_properties(self, name: str, properties: dict[str, str], *, user_metadata: str | None = None) -> None:
        """Set table properties: a commit of metadata only (no data file changes), run again
        after a conflict."""
        self._require(name)
        target = self.identifier(name) or f"delta.{quoted_name(self.path(name))}"
        pairs = ", ".join(f"{string_literal(k)} = {string_literal(v)}" for k, v in properties.items())
        session = self.spark if user_metadata is None else conflicts.session_for_commit(self.spark, user_metadata)
        try:
            self.run_retrying(name, "SET TBLPROPERTIES",
                              lambda: session.sql(f"ALTER TABLE {target} SET TBLPROPERTIES ({pairs})"))
        finally:
            if session is not self.spark:
                conflicts.release_commit_session(session)
