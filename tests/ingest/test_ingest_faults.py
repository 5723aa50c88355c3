"""Ingest killed at its named failure points (lakeboost.faults), proven where it struck, re-run:
bronze and its quarantine equal to an uninterrupted run, every row once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from chispa import assert_df_equality
from lakeboost.config import load_config
from lakeboost.faults import FAULT_ENV
from lakeboost.ingest.bronze import QUARANTINE_TABLE, ingest_sources
from lakeboost.io import TableCatalog
from pyspark.sql import DataFrame, SparkSession

from tests.helpers import write_lines

REPO = Path(__file__).resolve().parents[2]
HEADER = "txn_id,amount"
# Three files, one micro-batch each; every file has good rows and one bad row.
FILES = {f"day{d}.csv": [HEADER, *[f"T{d}{i},{d}.{i}" for i in range(4)], f"B{d},not-a-number"] for d in range(3)}


def _conf_dir(tmp_path: Path, lake: str) -> Path:
    conf = tmp_path / f"conf-{lake}"
    (conf / "base").mkdir(parents=True)
    (conf / "local").mkdir()
    base = yaml.safe_load((REPO / "conf/base/spark.yml").read_text())
    base["spark"]["master"] = "local[1]"
    base["spark"]["conf"].update({"spark.sql.shuffle.partitions": "1", "spark.ui.enabled": "false",
                                  "spark.databricks.delta.snapshotPartitions": "1"})
    base["storage"] = {"root": str(tmp_path / lake), "landing": str(tmp_path / "landing")}
    base["sources"] = {"txns": {"format": "csv", "path": "txns", "options": {"header": "true"},
                                "max_files_per_trigger": 1, "schema": {"txn_id": "string", "amount": "double"}}}
    (conf / "base" / "all.yml").write_text(yaml.safe_dump(base))
    return conf


def _ingest_job(conf: Path, fault: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    env.update({"SPARK_LOCAL_IP": "127.0.0.1", **({FAULT_ENV: fault} if fault else {})})
    return subprocess.run([sys.executable, str(REPO / "jobs/ingest.py"), "--conf-dir", str(conf)], env=env,
                          capture_output=True, text=True, timeout=300)


def _txn_versions(table_dir: Path, app: str) -> set[int]:
    """Batch ids committed under `app` (plus the query id), from the Delta log on disk."""
    found = set()
    for commit in (table_dir / "_delta_log").glob("*.json"):
        for line in commit.read_text().splitlines():
            txn = json.loads(line).get("txn") if line.strip() else None
            if txn and txn["appId"].rsplit(".", 1)[0] == app:
                found.add(int(txn["version"]))
    return found


def _checkpoint(checkpoint: Path) -> tuple[set[int], set[int]]:
    return tuple({int(p.name) for p in (checkpoint / d).glob("[0-9]*")} for d in ("offsets", "commits"))


def _comparable(df: DataFrame) -> DataFrame:
    return df.drop("_ingested_at", "ingested_at")


# One kill per point in the suite; bench/bench_kills.py repeats each with other batches and seeds.
@pytest.mark.parametrize(("point", "quarantine_batches", "quarantined_on_rerun"), [
    ("ingest.after_bronze_commit", {0}, 2),
])
def test_ingest_killed_between_its_writes_ends_equal_to_an_uninterrupted_run(
        spark: SparkSession, tmp_path: Path, point: str, quarantine_batches: set[int],
        quarantined_on_rerun: int) -> None:
    for name, lines in FILES.items():
        path = write_lines(tmp_path / "landing/txns" / name, lines)
        os.utime(path, (1_700_000_000 + int(name[3]), 1_700_000_000 + int(name[3])))
    killed_conf = _conf_dir(tmp_path, "killed")
    killed = TableCatalog(spark, load_config("local", conf_dir=killed_conf).storage)

    done = _ingest_job(killed_conf, f"{point}:1")

    # Where it struck: batch 1 committed the writes before the point, not its checkpoint.
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert f"lakeboost fault injection: killed at {point} (batch 1)" in done.stderr
    assert _txn_versions(Path(killed.path("bronze.txns")), "lakeboost.ingest.txns") == {0, 1}
    assert _txn_versions(Path(killed.path(QUARANTINE_TABLE)), "lakeboost.ingest.txns.quarantine") == quarantine_batches
    assert _checkpoint(Path(killed.checkpoint("bronze.txns", "ingest"))) == ({0, 1}, {0})

    rerun = ingest_sources(spark, load_config("local", conf_dir=killed_conf))
    reference_config = load_config("local", conf_dir=_conf_dir(tmp_path, "reference"))
    ingest_sources(spark, reference_config)
    reference = TableCatalog(spark, reference_config.storage)

    for table in ("bronze.txns", QUARANTINE_TABLE):
        assert_df_equality(_comparable(killed.read(table)), _comparable(reference.read(table)),
                           ignore_row_order=True, ignore_nullable=True)
    bronze = killed.read("bronze.txns")
    assert bronze.count() == bronze.select("txn_id").distinct().count() == 12
    assert killed.read(QUARANTINE_TABLE).count() == 3
    assert (rerun.rows_written, rerun.rows_quarantined) == (4, quarantined_on_rerun)
