"""One session-scoped SparkSession for the whole suite: Delta on, local[2], few partitions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lakeboost.config import load_config
from lakeboost.spark import build_spark
from pyspark.sql import SparkSession

REPO = Path(__file__).resolve().parents[1]
# Every JVM the suite starts (this session's, the jobs and clusters it launches) compiles with
# C1 only: the suite's JVMs run seconds to minutes on small data, where C2 spent 120 of the
# demo run's 270 CPU seconds compiling code that never ran long enough to pay it back (on
# 2 cores, time taken from the tests). The code cache is made large enough that C1's code is
# never swept. Measured on the demo fixture: JVM CPU 270 s -> 160 s, wall 194 s -> 172 s.
TEST_JVM_OPTIONS = ("-XX:+IgnoreUnrecognizedVMOptions -XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=512m "
                    "-XX:-UseCodeCacheFlushing")
if TEST_JVM_OPTIONS not in os.environ.get("JAVA_TOOL_OPTIONS", ""):
    os.environ["JAVA_TOOL_OPTIONS"] = f"{os.environ.get('JAVA_TOOL_OPTIONS', '')} {TEST_JVM_OPTIONS}".strip()
TEST_SPARK_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.databricks.delta.snapshotPartitions": "1",
    "spark.sql.adaptive.coalescePartitions.initialPartitionNum": "2",
    "spark.driver.memory": "4g",
    "spark.sql.session.timeZone": "UTC",
}


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> SparkSession:
    config = load_config("local", conf_dir=REPO / "conf")
    warehouse = tmp_path_factory.mktemp("warehouse")
    # A real event log (small buffer so it is flushed while the session lives): the PII tests
    # scan it for secrets, as the Spark history server would show it.
    event_log = tmp_path_factory.mktemp("eventlog")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    session = build_spark(
        config.spark.model_copy(update={"master": "local[2]"}),
        app_name="lakeboost-tests",
        extra_conf={**TEST_SPARK_CONF, "spark.sql.warehouse.dir": str(warehouse),
                    "spark.eventLog.enabled": "true", "spark.eventLog.dir": f"file://{event_log}",
                    "spark.eventLog.buffer.kb": "1k", "spark.eventLog.compress": "false"},
    )
    yield session
    session.stop()


DEMO_PII_KEY = "e2e-test-key-0123456789abcdef"
# min_window_rows 100: the 12k-row demo scores ~100 payments a day, and the monitor tests read
# the pipeline's own weekly records of that day.
DEMO_OVERRIDES = ["demo.rows=12000", "demo.days=120", "training.model.n_estimators=120",
                  "training.model.params={max_depth: 4, learning_rate: 0.1}", "monitor.min_window_rows=100"]


def demo_config(root: Path, overrides: list[str] | None = None):
    """The demo config rooted in `root` (the e2e lakehouse), plus `overrides`."""
    return load_config("local", [f"storage.root={root}/lake", f"storage.landing={root}/landing",
                                 *DEMO_OVERRIDES, *(overrides or [])],
                       conf_dir=REPO / "conf",
                       environ={"CUSTOMERS_JDBC_URL": f"jdbc:sqlite:{root}/landing/customers.db"})


@pytest.fixture(scope="session")
def demo(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory):
    """The whole pipeline run once on a small demo (end-to-end tests share it): (config, details)."""
    from lakeboost.pipeline import run_pipeline, select_steps

    root = tmp_path_factory.mktemp("demo")
    mp = pytest.MonkeyPatch()
    mp.setenv("LAKEBOOST_PII_KEY", DEMO_PII_KEY)
    config = demo_config(root)
    summary = run_pipeline(spark, config, select_steps(config))
    # The table versions the run ended with: later tests add tables and versions of their own.
    summary.details["pipeline_versions"] = dict(summary.versions)
    yield config, summary.details
    mp.undo()
