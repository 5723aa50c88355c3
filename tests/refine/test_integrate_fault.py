"""An integration killed inside its MERGE (lakeboost.faults): files written, no commit; the re-run
equals an uninterrupted build."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from chispa import assert_df_equality
from lakeboost.config.model import StorageConfig
from lakeboost.faults import FAULT_ENV
from lakeboost.io import TableCatalog
from lakeboost.refine.integrate import integrate_step
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from tests.refine.test_integrate import SPEC, tables

REPO = Path(__file__).resolve().parents[2]
TARGET = "silver.visits_integrated"
BUILD = """
import sys
from lakeboost.config import load_config
from lakeboost.config.model import StorageConfig
from lakeboost.io import TableCatalog
from lakeboost.refine.integrate import integrate_step
from lakeboost.spark import build_spark
from tests.refine.test_integrate import SPEC
spark = build_spark(load_config("local", ["spark.master=local[1]"]).spark, app_name="integrate-fault")
integrate_step(TableCatalog(spark, StorageConfig(root=sys.argv[1])), "visits_integrated", SPEC)
"""


def _inputs(spark: SparkSession, catalog: TableCatalog) -> None:
    for name, df in tables(spark).items():
        catalog.write(df, name)


def _new_visit(spark: SparkSession, catalog: TableCatalog) -> None:
    catalog.write(spark.createDataFrame([("B", 2, "2026-01-06 10:00:00", 2.0)],
                                            "site string, visit_no int, at string, minutes double")
                      .withColumn("at", F.to_timestamp("at")), "silver.visits")


def _referenced(table_dir: Path) -> set[str]:
    paths = set()
    for commit in (table_dir / "_delta_log").glob("*.json"):
        for line in commit.read_text().splitlines():
            if line.strip() and "add" in (action := json.loads(line)):
                paths.add(action["add"]["path"])
    return paths


def test_an_integration_killed_inside_its_merge_reruns_to_the_uninterrupted_table(
        spark: SparkSession, tmp_path: Path) -> None:
    killed = TableCatalog(spark, StorageConfig(root=str(tmp_path / "killed")))
    _inputs(spark, killed)
    integrate_step(killed, "visits_integrated", SPEC)
    _new_visit(spark, killed)
    table_dir = Path(killed.path(TARGET))

    done = subprocess.run([sys.executable, "-c", BUILD, str(tmp_path / "killed")], cwd=REPO,
                          env={**os.environ, FAULT_ENV: "integrate.during_merge", "SPARK_LOCAL_IP": "127.0.0.1"},
                          capture_output=True, text=True, timeout=300)

    # Where it struck: inside the MERGE, its data files written, its commit not.
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    assert "lakeboost fault injection: killed at integrate.during_merge" in done.stderr
    assert sorted(p.name for p in (table_dir / "_delta_log").glob("*.json")) == [f"{0:020d}.json"]
    written = {str(p.relative_to(table_dir)) for p in table_dir.rglob("*.parquet") if "_delta_log" not in p.parts}
    assert written - _referenced(table_dir), "the kill should leave the MERGE's files without a commit"

    integrate_step(killed, "visits_integrated", SPEC)
    reference = TableCatalog(spark, StorageConfig(root=str(tmp_path / "reference")))
    _inputs(spark, reference)
    _new_visit(spark, reference)
    integrate_step(reference, "visits_integrated", SPEC)

    result = killed.read(TARGET)
    assert_df_equality(result, reference.read(TARGET), ignore_row_order=True, ignore_nullable=True)
    assert result.count() == result.select("site", "visit_no").distinct().count() == 5
