"""Concurrent writers on one Delta table, with real threads: conflicts retried where the write is
idempotent, refused with ConcurrentWriteError where it is not, and each writer reporting its own
commit.

The races are made deterministic by a gate: one task of the write under test (its source, read
inside Delta's transaction, after the snapshot it will commit against was taken) waits until the
test has made the competing commit. The conflict is then certain, and the tests assert that it
happened (the retry's log record, or the error).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from lakeboost.config.model import StorageConfig
from lakeboost.errors import ConcurrentWriteError
from lakeboost.io import TableCatalog
from lakeboost.io.conflicts import ConflictPolicy, conflict_name, run_retrying
from lakeboost.io.hashing import with_content_hash
from lakeboost.io.maintenance import optimize
from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

SCORES = "k string, score double, scored_at int"
QUARANTINE = "source string, batch int, reason string"
FAST = ConflictPolicy(attempts=3, base_delay_s=0.01)


class Gate:
    """Holds a write's source inside its transaction until the test has committed in between.

    Each time the source is read, its (single) task leaves `entered-<id>` and waits for
    `go-<id>`; `serve` answers the next one with a competing commit, `open` lets every later
    read pass.
    """

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        directory.mkdir()

    def hold(self, df: DataFrame) -> DataFrame:
        where = str(self.dir)

        def wait_for_go(batches: Iterator) -> Iterator:
            import os
            import time
            import uuid

            me, give_up = uuid.uuid4().hex, time.monotonic() + 300  # a failed test must not hang the suite
            if not os.path.exists(f"{where}/open"):
                open(f"{where}/entered-{me}", "w").close()
                while not (os.path.exists(f"{where}/go-{me}") or os.path.exists(f"{where}/open")):
                    if time.monotonic() > give_up:
                        break
                    time.sleep(0.02)
            yield from batches

        return df.coalesce(1).mapInArrow(wait_for_go, df.schema)

    def serve(self, held: Future, compete: Callable[[], object], timeout_s: float = 180) -> None:
        """Wait for the `held` write to enter, run `compete` (a commit), let the write go on."""
        served = {p.name.removeprefix("go-") for p in self.dir.glob("go-*")}
        deadline = time.monotonic() + timeout_s
        while True:
            waiting = [p.name.removeprefix("entered-") for p in self.dir.glob("entered-*")]
            pending = [w for w in waiting if w not in served]
            if pending:
                break
            if held.done():
                held.result()  # its error, if it failed
                raise AssertionError("the gated write ended without reading its source (again)")
            assert time.monotonic() < deadline, "the gated write never reached its source"
            time.sleep(0.05)
        compete()
        (self.dir / f"go-{pending[0]}").touch()

    def open(self) -> None:
        (self.dir / "open").touch()


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    held = Gate(tmp_path / "gate")
    yield held
    held.open()  # whatever happened, no write stays held


def _scores(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    return spark.createDataFrame(rows, SCORES).transform(with_content_hash, columns=["k", "score", "scored_at"])


def _upsert(catalog: TableCatalog, df: DataFrame, name: str):
    return catalog.upsert(df, name, keys=("k",), order_by=("scored_at",))


def _in_thread(fn: Callable[[], object]) -> tuple[ThreadPoolExecutor, Future]:
    pool = ThreadPoolExecutor(1)
    return pool, pool.submit(fn)


def _commit(root: Path, table: str, version: int) -> dict:
    """The actions of one commit, from its log file: {'txn': ..., 'commitInfo': ..., 'add': [...]}."""
    layer, name = table.split(".")
    actions: dict = {"add": []}
    for line in (root / layer / name / "_delta_log" / f"{version:020d}.json").read_text().splitlines():
        action = json.loads(line)
        if "add" in action:
            actions["add"].append(action["add"])
        else:
            actions.update(action)
    return actions


def _retries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "lakeboost.io.conflicts" and "retry" in r.getMessage()]


def test_two_appenders_on_one_quarantine_table_lose_nothing_and_report_their_own_commits(
        spark: SparkSession, tmp_path: Path) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)), conflict_policy=FAST)
    catalog.write(spark.createDataFrame([("setup", 0, "seed")], QUARANTINE), "bronze.quarantine")
    rounds, both = 3, threading.Barrier(2)

    def appender(source: str) -> list:
        results = []
        for batch in range(rounds):
            rows = spark.createDataFrame([(source, batch, f"bad row {batch}")], QUARANTINE)
            both.wait(timeout=120)  # the two writers commit side by side, round after round
            results.append(catalog.write(rows, "bronze.quarantine", txn=(f"ingest.{source}.q", batch)))
        return results

    with ThreadPoolExecutor(2) as pool:
        continuous, scheduled = pool.submit(appender, "continuous"), pool.submit(appender, "scheduled")
        reported = {"continuous": continuous.result(), "scheduled": scheduled.result()}

    expected = spark.createDataFrame(
        [("setup", 0, "seed")] + [(s, b, f"bad row {b}") for s in reported for b in range(rounds)], QUARANTINE)
    assertDataFrameEqual(catalog.read("bronze.quarantine"), expected)  # nothing lost, nothing twice
    for source, results in reported.items():
        for batch, result in enumerate(results):
            commit = _commit(tmp_path, "bronze.quarantine", result.version)
            assert (commit["txn"]["appId"], commit["txn"]["version"]) == (f"ingest.{source}.q", batch)
            assert (result.operation, result.rows_written) == ("WRITE", 1)
    versions = sorted(r.version for results in reported.values() for r in results)
    assert versions == list(range(1, 2 * rounds + 1))
    # A replayed batch (a restart) is skipped by its txn and reports no commit.
    again = catalog.write(spark.createDataFrame([("scheduled", 2, "bad row 2")], QUARANTINE), "bronze.quarantine",
                          txn=("ingest.scheduled.q", 2))
    assert again.version is None
    assertDataFrameEqual(catalog.read("bronze.quarantine"), expected)


def test_concurrent_upserts_with_overlapping_keys_equal_the_sequential_run(
        spark: SparkSession, tmp_path: Path, gate: Gate, caplog: pytest.LogCaptureFixture) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)), conflict_policy=FAST)
    first = _scores(spark, [("a", 0.1, 1), ("b", 0.2, 1), ("c", 0.3, 1)])
    scorer = _scores(spark, [("b", 0.25, 2), ("c", 0.35, 3), ("d", 0.4, 2)])   # c: newer than refine's
    refine = _scores(spark, [("c", 0.33, 2), ("e", 0.5, 2)])                   # e: disjoint
    for df in (first, scorer, refine):
        _upsert(catalog, df, "gold.sequential")
    _upsert(catalog, first, "silver.scores")

    with caplog.at_level(logging.WARNING, logger="lakeboost.io.conflicts"):
        pool, held = _in_thread(lambda: _upsert(catalog, gate.hold(scorer), "silver.scores"))
        gate.serve(held, lambda: _upsert(catalog, refine, "silver.scores"))  # refine commits inside the scorer's MERGE
        gate.open()
        result = held.result(timeout=300)
        pool.shutdown()

    assert len(_retries(caplog)) == 1 and "silver.scores: upsert (MERGE on k) conflicted" in _retries(caplog)[0]
    assertDataFrameEqual(catalog.read("silver.scores"), catalog.read("gold.sequential"))
    assert _commit(tmp_path, "silver.scores", result.version)["commitInfo"]["operation"] == "MERGE"
    assert result.version == 2 and result.metrics["numTargetRowsInserted"] == 1  # d (refine wrote e at 1)


def test_upsert_during_optimize_is_retried(spark: SparkSession, tmp_path: Path, gate: Gate,
                                           caplog: pytest.LogCaptureFixture) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)), conflict_policy=FAST)
    for rows in ([("a", 0.1, 1)], [("b", 0.2, 1)], [("c", 0.3, 1)]):  # three files for OPTIMIZE to compact
        catalog.write(_scores(spark, rows), "silver.scores")
    update = _scores(spark, [("a", 0.9, 2), ("d", 0.4, 2)])
    compacted: dict = {}

    with caplog.at_level(logging.WARNING, logger="lakeboost.io.conflicts"):
        pool, held = _in_thread(lambda: _upsert(catalog, gate.hold(update), "silver.scores"))
        gate.serve(held, lambda: compacted.update(optimize(catalog, "silver.scores")))
        gate.open()
        result = held.result(timeout=300)
        pool.shutdown()

    assert compacted["files_removed"] == 3
    assert len(_retries(caplog)) == 1 and "concurrent OPTIMIZE at version 3" in _retries(caplog)[0]
    assertDataFrameEqual(catalog.read("silver.scores"),
                         _scores(spark, [("a", 0.9, 2), ("b", 0.2, 1), ("c", 0.3, 1), ("d", 0.4, 2)]))
    assert (result.version, result.operation) == (4, "MERGE")


def test_partition_overwrite_beside_an_upsert_is_refused_naming_the_table(
        spark: SparkSession, tmp_path: Path, gate: Gate) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)), conflict_policy=FAST)
    catalog.write(_scores(spark, [("a", 0.1, 1), ("b", 0.2, 2)]), "silver.scores", partition_by=("scored_at",))
    rebuild = _scores(spark, [("a", 0.0, 1)])

    pool, held = _in_thread(lambda: catalog.write(gate.hold(rebuild), "silver.scores", mode="overwrite",
                                                  replace_where="scored_at = 1"))
    gate.serve(held, lambda: _upsert(catalog, _scores(spark, [("c", 0.3, 1)]), "silver.scores"))
    gate.open()
    with pytest.raises(ConcurrentWriteError, match=(
            r"silver.scores: overwrite write \(replaceWhere scored_at = 1\) conflicted with a concurrent MERGE at "
            r"version 1 \(Concurrent\w+Exception\) and was not retried: an overwrite replaces the rows it read .* "
            r"Nothing was written. Re-run the step that writes silver.scores once the other writer has finished")):
        held.result(timeout=300)
    pool.shutdown()
    assert ConcurrentWriteError.exit_code == 13
    assertDataFrameEqual(catalog.read("silver.scores"),
                         _scores(spark, [("a", 0.1, 1), ("b", 0.2, 2), ("c", 0.3, 1)]))


def test_a_conflict_on_every_attempt_exhausts_the_retries(spark: SparkSession, tmp_path: Path, gate: Gate,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)), conflict_policy=ConflictPolicy(2, 0.01))
    _upsert(catalog, _scores(spark, [("a", 0.1, 1)]), "silver.scores")
    other = TableCatalog(spark, StorageConfig(root=str(tmp_path)))

    with caplog.at_level(logging.WARNING, logger="lakeboost.io.conflicts"):
        pool, held = _in_thread(lambda: _upsert(catalog, gate.hold(_scores(spark, [("a", 0.9, 2)])), "silver.scores"))
        for n in (1, 2):  # a competing MERGE inside each attempt
            gate.serve(held, lambda n=n: _upsert(other, _scores(spark, [(f"x{n}", 0.5, 1)]), "silver.scores"))
        gate.open()
        with pytest.raises(ConcurrentWriteError, match=(
                r"silver.scores: upsert \(MERGE on k\) still conflicted with concurrent commits after 2 attempts "
                r"\(the last with a concurrent MERGE at version 2, ConcurrentAppendException\)\. Nothing was written\. "
                r"The write is idempotent: re-run the step that writes silver.scores")):
            held.result(timeout=300)
        pool.shutdown()

    assert len(_retries(caplog)) == 1
    assertDataFrameEqual(catalog.read("silver.scores").select("k", "score"),
                         spark.createDataFrame([("a", 0.1), ("x1", 0.5), ("x2", 0.5)], "k string, score double"))


def test_a_write_that_commits_nothing_reports_no_version_while_another_writer_commits(
        spark: SparkSession, tmp_path: Path, gate: Gate) -> None:
    catalog = TableCatalog(spark, StorageConfig(root=str(tmp_path)))
    rows = _scores(spark, [("a", 0.1, 1)])
    _upsert(catalog, rows, "silver.scores")

    pool, held = _in_thread(lambda: _upsert(catalog, gate.hold(rows), "silver.scores"))  # a re-run: no change
    gate.serve(held, lambda: catalog.write(_scores(spark, [("b", 0.2, 1)]), "silver.scores"))
    gate.open()
    rerun = held.result(timeout=300)
    pool.shutdown()

    assert rerun.version is None  # the table's latest (1) is the other writer's append
    assert catalog.version("silver.scores") == 1


def test_conflicts_are_recognised_by_delta_class_not_by_any_error() -> None:
    from delta.exceptions import ConcurrentDeleteReadException, MetadataChangedException

    assert conflict_name(ConcurrentDeleteReadException("files read were deleted")) == "ConcurrentDeleteReadException"
    try:
        try:
            raise MetadataChangedException("metadata changed")
        except MetadataChangedException as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert conflict_name(outer) == "MetadataChangedException"
    assert conflict_name(ValueError(f"no conflict {uuid.uuid4()}")) is None


@pytest.mark.parametrize("condition, name", [("DELTA_CONCURRENT_APPEND.WITHOUT_HINT", "ConcurrentAppendException"),
                                             ("DELTA_CONCURRENT_DELETE_READ.WITH_PARTITION_HINT",
                                              "ConcurrentDeleteReadException"),
                                             ("DELTA_METADATA_CHANGED", "MetadataChangedException")])
def test_a_conflict_over_spark_connect_is_recognised_by_its_error_class(condition: str, name: str) -> None:
    # Over Connect the client gets neither the Java class nor delta.exceptions' Python class, only
    # the error class the server sent, in the exception pyspark's Connect client raises; Delta 4.4's
    # message of an append conflict does not name the exception.
    from pyspark.errors.exceptions.connect import AnalysisException as ConnectAnalysisException

    error = ConnectAnalysisException(message=f"[{condition}] Transaction conflict detected.", errorClass=condition)
    assert conflict_name(error) == name
    assert conflict_name(ConnectAnalysisException(message="[TABLE_OR_VIEW_NOT_FOUND] nope",
                                                  errorClass="TABLE_OR_VIEW_NOT_FOUND")) is None


def test_a_conflict_already_refused_inside_an_attempt_is_not_retried_again() -> None:
    from delta.exceptions import ConcurrentAppendException

    calls = []

    def attempt() -> None:
        calls.append(1)
        raise ConcurrentAppendException("a concurrent MERGE added data to table t committed at version 7")

    with pytest.raises(ConcurrentWriteError, match=r"silver.t: upsert still conflicted with concurrent commits "
                                                   r"after 2 attempts \(the last with a concurrent MERGE at version 7"):
        run_retrying(attempt, table="silver.t", operation="upsert", retry=True, policy=ConflictPolicy(2, 0.001))
    assert len(calls) == 2

    def refused_inside() -> None:
        calls.append(1)
        run_retrying(attempt, table="silver.t", operation="overwrite", retry=False, policy=FAST,
                     refused_because="it replaces what it read")

    with pytest.raises(ConcurrentWriteError, match=r"overwrite conflicted with a concurrent MERGE at version 7 "
                                                   r"\(ConcurrentAppendException\) and was not retried: it replaces"):
        run_retrying(refused_inside, table="silver.t", operation="upsert", retry=True, policy=FAST)
    assert len(calls) == 4  # the outer run did not run the refused write again
