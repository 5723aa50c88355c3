"""The features job killed inside the write that replaces a feature table's dates, then re-run.

The kill (`LAKEBOOST_FAULT=features.during_replace`) strikes once the replace has written a
data file and before its commit: the log proves no commit landed (on the feature table or the
state) while orphan files did, and the re-run leaves the table equal to an uninterrupted build.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from chispa import assert_df_equality
from lakeboost.config.tables import FrameworkTables
from lakeboost.features.build import build_features
from lakeboost.io import TableCatalog
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from tests.features import small_lake

STATE = FrameworkTables().feature_state

POINT = "features.during_replace"


def log_state(table_dir: Path) -> tuple[set[str], set[str], set[str]]:
    """(commit files, data files the log adds, data files on disk) of a Delta table."""
    commits = {p.name for p in (table_dir / "_delta_log").glob("*.json")}
    added: set[str] = set()
    for name in commits:
        for line in (table_dir / "_delta_log" / name).read_text().splitlines():
            action = json.loads(line) if line.strip() else {}
            for kind in ("add", "cdc"):
                if kind in action:
                    added.add(action[kind]["path"])
    on_disk = {str(p.relative_to(table_dir)) for p in table_dir.rglob("*.parquet") if "_delta_log" not in p.parts}
    return commits, added, on_disk


@pytest.mark.e2e
def test_a_kill_inside_the_date_replace_commits_nothing_and_a_rerun_equals_an_uninterrupted_build(
        spark: SparkSession, tmp_path: Path) -> None:
    conf = small_lake.conf_dir(tmp_path, training_set=False)
    config = small_lake.config(conf)
    small_lake.write_inputs(spark, config)
    catalog = TableCatalog(spark, config.storage)
    build_features(catalog, config)
    # A late row for day 3: the next build replaces days 3..5.
    catalog.write(small_lake.events(spark, [("LATE", 1, "M1", small_lake.at(3, 23), 500.0, 1.0, None)]),
                  "silver.events")
    clean_root = tmp_path / "clean"
    shutil.copytree(config.storage.root, clean_root)
    table_dir, state_dir = Path(catalog.path("gold.feats")), Path(catalog.path(STATE))
    commits_before, _, _ = log_state(table_dir)
    state_before, _, _ = log_state(state_dir)

    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "LAKEBOOST_FAULT": POINT}
    killed = subprocess.run([sys.executable, str(small_lake.REPO / "jobs/features.py"), "--conf-dir", str(conf)],
                            env=env, capture_output=True, text=True, timeout=420)

    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert f"lakeboost fault injection: killed at {POINT}" in killed.stderr
    # Inside the window: the replace wrote files, and neither it nor the state committed.
    commits, added, on_disk = log_state(table_dir)
    assert commits == commits_before
    assert on_disk - added, "the kill should strike after the replace wrote a file"
    assert log_state(state_dir)[0] == state_before

    rerun = build_features(catalog, config)
    clean_config = config.model_copy(update={"storage": config.storage.model_copy(update={"root": str(clean_root)})})
    clean = build_features(TableCatalog(spark, clean_config.storage), clean_config)

    assert rerun.details["feats"]["mode"] == clean.details["feats"]["mode"] == "incremental"
    assert rerun.details["feats"]["dates"] == clean.details["feats"]["dates"] == 3
    features = catalog.read("gold.feats")
    expected = TableCatalog(spark, config.storage.model_copy(update={"root": str(clean_root)})).read("gold.feats")
    assert_df_equality(features, expected, ignore_row_order=True, ignore_nullable=True)
    assert features.groupBy("txn_id").count().filter(F.col("count") > 1).count() == 0
