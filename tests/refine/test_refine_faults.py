"""Refine killed inside the silver MERGE, and between it and the quarantine and quality writes:
each kill is proved to have struck in its window, and the re-runs end where an uninterrupted run
ends, row for row."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from chispa import assert_df_equality
from lakeboost.config import LakeboostConfig, load_config
from lakeboost.config.tables import FrameworkTables
from lakeboost.faults import FAULT_ENV
from lakeboost.io import TableCatalog
from lakeboost.refine.silver import refine_tables
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from tests.helpers import job_conf_dir

QUALITY, QUARANTINE = FrameworkTables().data_quality, FrameworkTables().silver_quarantine

REPO = Path(__file__).resolve().parents[2]
BRONZE = "event_id string, amount string, _source string, _source_file string, _ingested_at string, " \
         "_batch_id bigint, _source_modified_at string, _source_position bigint"
# Per bronze commit: updates of earlier keys (some tying on _ingested_at), new keys, a row failing
# the contract and one failing a cast, so that every table the batch writes gets rows.
COMMITS = [
    [("e1", "1"), ("e2", "2"), ("e3", "-3"), ("e4", "four")],
    [("e1", "10"), ("e2", "20"), ("e2", "21"), ("e5", "5"), ("e6", "-6"), ("e7", "x7")],
    [("e1", "100"), ("e5", "50"), ("e8", "8"), ("e9", "-9"), ("e10", "ten")],
]


def _conf_dir(root: Path) -> Path:
    return job_conf_dir(root / "conf", root, {
        "sources": {"events": {"format": "json", "path": "events",
                               "schema": {"event_id": "string", "amount": "string"}}},
        "silver": {"tables": {"events": {
            "source": "bronze.events", "keys": ["event_id"], "order_by": ["_ingested_at"],
            "columns": {"event_id": {"type": "string"}, "amount": {"type": "double"}},
            "expectations": {"amount_positive": {"expr": "amount > 0", "action": "quarantine"}}}}}})


def _bronze(spark: SparkSession, commit: int) -> DataFrame:
    day = f"2026-02-0{commit + 1} 00:00:00"
    rows = [(key, amount, "events", f"events_{commit}.json", day, commit, day, i)
            for i, (key, amount) in enumerate(COMMITS[commit])]
    return (spark.createDataFrame(rows, BRONZE)
            .withColumn("_ingested_at", F.to_timestamp("_ingested_at"))
            .withColumn("_source_modified_at", F.to_timestamp("_source_modified_at")))


def _run_killed(conf: Path, fault: str, log: Path) -> str:
    """jobs/refine.py as a user runs it, with the fault armed; returns its stderr."""
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", FAULT_ENV: fault}
    with log.open("w") as err:
        child = subprocess.Popen([sys.executable, str(REPO / "jobs/refine.py"), "--conf-dir", str(conf)],
                                 env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            child.wait(timeout=300)
        finally:
            with contextlib.suppress(ProcessLookupError):  # the job's JVM goes with it, whatever happened
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    stderr = log.read_text()
    point = fault.split(":")[0]
    assert child.returncode == -signal.SIGKILL, f"exit {child.returncode}: {stderr[-3000:]}"
    assert f"lakeboost fault injection: killed at {point}" in stderr
    return stderr


def _commits(catalog: TableCatalog, table: str) -> list[list[dict]]:
    """Each commit's actions, read from the Delta log on disk (this session's snapshot cache lags a
    foreign writer); [] for a table not created yet."""
    log = Path(catalog.path(table)) / "_delta_log"
    return [[json.loads(line) for line in p.read_text().splitlines() if line.strip()]
            for p in sorted(log.glob("*.json"))]


def _data_files(catalog: TableCatalog, table: str) -> set[str]:
    root = Path(catalog.path(table))
    return {str(p.relative_to(root)) for p in root.rglob("*.parquet") if "_delta_log" not in p.parts}


def _referenced(catalog: TableCatalog, table: str) -> set[str]:
    return {a[kind]["path"] for commit in _commits(catalog, table) for a in commit
            for kind in ("add", "cdc") if kind in a}


def _checkpoint(catalog: TableCatalog) -> tuple[set[int], set[int]]:
    """(batches with an offset, batches committed) in the refine checkpoint of silver.events."""
    root = Path(catalog.checkpoint("silver.events", "refine"))

    def batches(folder: str) -> set[int]:
        return {int(p.name) for p in (root / folder).glob("[0-9]*")}

    return batches("offsets"), batches("commits")


def _tables(catalog: TableCatalog) -> dict[str, DataFrame]:
    return {"silver.events": catalog.read("silver.events"),
            QUARANTINE: catalog.read(QUARANTINE).drop("run_id", "quarantined_at"),
            QUALITY: catalog.read(QUALITY).drop("run_id", "recorded_at")}


@pytest.mark.e2e
def test_refine_killed_in_and_after_the_merge_reruns_to_the_uninterrupted_result(spark: SparkSession,
                                                                                   tmp_path: Path) -> None:
    clean, killed = (load_config("local", conf_dir=_conf_dir(tmp_path / name)) for name in ("clean", "killed"))
    conf = tmp_path / "killed" / "conf"
    lake = {name: TableCatalog(spark, config.storage) for name, config in (("clean", clean), ("killed", killed))}
    tables = ("silver.events", QUARANTINE, QUALITY)

    def next_commit(commit: int, config: LakeboostConfig) -> None:
        TableCatalog(spark, config.storage).write(_bronze(spark, commit), "bronze.events")

    for commit in range(3):  # the uninterrupted run: one refine per bronze commit
        next_commit(commit, clean)
        refine_tables(TableCatalog(spark, clean.storage), clean)
    next_commit(0, killed)
    refine_tables(TableCatalog(spark, killed.storage), killed)
    catalog = lake["killed"]

    # Inside the MERGE of batch 1: its data files are written, its commit is not.
    next_commit(1, killed)
    before = {t: len(_commits(catalog, t)) for t in tables}
    files_before = _data_files(catalog, "silver.events")
    _run_killed(conf, "refine.during_merge:1", tmp_path / "during_merge.log")
    assert {t: len(_commits(catalog, t)) for t in tables} == before
    orphans = _data_files(catalog, "silver.events") - files_before
    assert orphans and not orphans & _referenced(catalog, "silver.events")
    assert _checkpoint(catalog) == ({0, 1}, {0})
    refine_tables(TableCatalog(spark, killed.storage), killed)

    # After the MERGE of batch 2: silver committed, quarantine and quality rows not written.
    next_commit(2, killed)
    before = {t: len(_commits(catalog, t)) for t in tables}
    _run_killed(conf, "refine.after_merge:2", tmp_path / "after_merge.log")
    assert {t: len(_commits(catalog, t)) - before[t] for t in tables} == {"silver.events": 1, QUARANTINE: 0,
                                                                           QUALITY: 0}
    merged = next(a["commitInfo"] for a in _commits(catalog, "silver.events")[-1] if "commitInfo" in a)
    assert merged["operation"] == "MERGE"
    assert _checkpoint(catalog) == ({0, 1, 2}, {0, 1})
    refine_tables(TableCatalog(spark, killed.storage), killed)

    assert _checkpoint(catalog) == ({0, 1, 2}, {0, 1, 2})
    expected, actual = _tables(lake["clean"]), _tables(catalog)
    for table in tables:
        assert_df_equality(actual[table], expected[table], ignore_row_order=True, ignore_nullable=True)
    silver = actual["silver.events"]
    assert silver.groupBy("event_id").count().filter("count > 1").count() == 0
    assert {r.event_id: r.amount for r in silver.collect()} == {"e1": 100.0, "e2": 21.0, "e5": 50.0, "e8": 8.0}
    assert actual[QUARANTINE].count() == 6  # a contract and a cast failure per commit
