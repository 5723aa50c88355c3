"""The Airflow DAG (scheduling/airflow/lakeboost_dag.py) checked by Airflow itself.

The runtime's virtualenv has no Airflow (its pins would fight Spark's): Airflow lives in its own,
made by scripts/install-airflow.sh (.venv-airflow, or the Python that LAKEBOOST_AIRFLOW_PYTHON
names), and these tests drive it in subprocesses: DagBag parses the DAG under good and broken
settings (airflow_probe.py), and `airflow tasks test` runs the ingest task through spark-submit
on a local master. Without that virtualenv the tests skip, unless LAKEBOOST_REQUIRE_AIRFLOW=1
(CI), where they fail.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
import zipfile
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from lakeboost.config import load_config
from lakeboost.io.catalog import TableCatalog
from lakeboost.pipeline import run_step
from lakeboost.spark.session import session_jars
from lakeboost.steps import FRAMEWORK_STEPS
from pyspark.sql import SparkSession

from tests.conftest import DEMO_PII_KEY

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "scheduling" / "airflow" / "lakeboost_dag.py"
PROBE = Path(__file__).with_name("airflow_probe.py")
SCHEDULED_STEPS = list(FRAMEWORK_STEPS)
DAG_ID = "lakeboost_pipeline"
AIRFLOW_PYTHON = "LAKEBOOST_AIRFLOW_PYTHON"
REQUIRE_AIRFLOW = "LAKEBOOST_REQUIRE_AIRFLOW"
SOURCES = ("customers", "transactions", "merchants", "chargebacks", "card_events")


def load_dag_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lakeboost_dag", DAG_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def airflow_python() -> Path:
    """The Airflow virtualenv's Python; skips (fails where Airflow is required) when there is none."""
    given = os.environ.get(AIRFLOW_PYTHON)
    python = Path(given) if given else REPO / ".venv-airflow" / "bin" / "python"
    # An install under way (.ci/run's, beside the suite) holds <venv>.lock until it has finished.
    lock = python.parent.parent.with_name(python.parent.parent.name + ".lock")
    if lock.exists():
        with lock.open() as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
    if python.is_file():
        return python
    reason = (f"no Airflow virtualenv: {python} does not exist (./scripts/install-airflow.sh makes it; "
              f"{AIRFLOW_PYTHON} names another)")
    if os.environ.get(REQUIRE_AIRFLOW) == "1":
        pytest.fail(f"{REQUIRE_AIRFLOW}=1 but {reason}")
    pytest.skip(reason)


def airflow_environ(airflow_home: Path, **settings: str) -> dict[str, str]:
    """This process's environment for an Airflow command: its own AIRFLOW_HOME (sqlite), the DAG
    folder, the settings; nothing of this pytest's Spark (a py4j gateway would be joined, not started)."""
    inherited = {k: v for k, v in os.environ.items()
                 if not k.startswith(("AIRFLOW", "LAKEBOOST_", "PYSPARK_", "SPARK_CONNECT", "SPARK_REMOTE"))
                 and k != "PYTHONPATH"}
    return {**inherited, "AIRFLOW_HOME": str(airflow_home), "AIRFLOW__CORE__DAGS_FOLDER": str(DAG_FILE.parent),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False", **settings}


@pytest.fixture(scope="module")
def jars() -> list[str]:
    """The runtime's JVM jars (Delta, JDBC drivers), as `lakeboost.spark.prefetch` prints them."""
    return session_jars(load_config("local", conf_dir=REPO / "conf").spark)


@pytest.fixture(scope="module")
def lakeboost_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LAKEBOOST_HOME as scheduling/README.md sets one up: the checkout's jobs/ and conf/, the package zip."""
    home = tmp_path_factory.mktemp("lakeboost_home")
    for part in ("jobs", "conf", "examples"):
        (home / part).symlink_to(REPO / part)
    (home / "build").mkdir()
    with zipfile.ZipFile(home / "build" / "lakeboost.zip", "w") as package:
        for file in sorted((REPO / "lib" / "lakeboost").rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts:
                package.write(file, file.relative_to(REPO / "lib"))
    return home


@pytest.fixture(scope="module")
def parsed(lakeboost_home: Path, jars: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What DagBag found, per environment: good settings and each kind of broken ones (one Airflow process)."""
    python = airflow_python()
    tmp = tmp_path_factory.mktemp("airflow_parse")
    no_zip = tmp / "home_without_zip"
    no_zip.mkdir()
    for part in ("jobs", "conf"):
        (no_zip / part).symlink_to(REPO / part)
    good = {"LAKEBOOST_HOME": str(lakeboost_home), "LAKEBOOST_JARS": ",".join(jars)}
    scenarios = {
        "good": good,
        "no_home": {**good, "LAKEBOOST_HOME": str(tmp / "nowhere")},
        "no_zip": {**good, "LAKEBOOST_HOME": str(no_zip)},
        "missing_jar": {**good, "LAKEBOOST_JARS": ",".join([*jars, str(tmp / "gone.jar")])},
        "no_delta_jar": {**good, "LAKEBOOST_JARS": ",".join(j for j in jars if "/delta-" not in j)},
        "no_jars": {**good, "LAKEBOOST_JARS": None},
        # A cluster's jars on shared storage: the worker cannot check them, and does not refuse them.
        "remote_jars": {**good, "LAKEBOOST_JARS": "hdfs:///jars/delta-spark_4.2_2.13-4.4.0.jar"},
    }
    out = tmp / "parsed.json"
    done = subprocess.run([str(python), str(PROBE), str(DAG_FILE.parent), str(out)], input=json.dumps(scenarios),
                          env=airflow_environ(tmp / "airflow_home"), capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    return {**json.loads(out.read_text()), "home": lakeboost_home, "jars": jars, "tmp": tmp}


def test_airflow_dag_steps_are_the_scheduled_pipeline_steps() -> None:
    # Without Airflow the file defines its tables and no DAG: the steps, retries and timeouts.
    module = load_dag_module()
    assert list(module.STEPS) == SCHEDULED_STEPS
    assert module.RETRIES["train"] == 2 and module.DEFAULT_RETRIES == 1
    assert set(module.TIMEOUTS) == set(SCHEDULED_STEPS)
    assert max(module.TIMEOUTS, key=module.TIMEOUTS.get) == "train"
    assert not hasattr(module, "dag")


def test_airflow_parses_the_dag_with_the_pipeline_graph(parsed: dict[str, Any]) -> None:
    assert parsed["good"]["import_errors"] == {}
    dag = parsed["good"]["dags"][DAG_ID]
    assert (dag["schedule"], dag["catchup"], dag["max_active_runs"]) == ("0 3 * * *", False, 1)
    tasks = dag["tasks"]
    assert [task["task_id"] for task in tasks] == SCHEDULED_STEPS
    for i, task in enumerate(tasks):
        assert task["upstream"] == ([SCHEDULED_STEPS[i - 1]] if i else []), task["task_id"]


def test_every_task_submits_its_job_with_the_settings(parsed: dict[str, Any]) -> None:
    home, jars = parsed["home"], parsed["jars"]
    for task in parsed["good"]["dags"][DAG_ID]["tasks"]:
        step = task["task_id"]
        assert task["bases"][:2] == ["LakeboostStepOperator", "SparkSubmitOperator"] and task["do_xcom_push"]
        assert task["conn_id"] == "spark_default"
        assert task["application"] == str(home / "jobs" / f"{step}.py") and Path(task["application"]).is_file()
        assert task["application_args"] == ["--env", "cluster", "--conf-dir", str(home / "conf")]
        assert task["py_files"] == str(home / "build" / "lakeboost.zip")
        assert task["jars"] == ",".join(jars)
        assert task["conf"] == {"spark.dynamicAllocation.enabled": "false",
                                "spark.pyspark.python": str(home / ".venv" / "bin" / "python")}
        assert task["retries"] == (2 if step == "train" else 1)


def test_every_task_is_bounded_in_time_and_a_run_with_all_its_retries_ends_within_the_dagrun_timeout(
        parsed: dict[str, Any]) -> None:
    module = load_dag_module()
    dag = parsed["good"]["dags"][DAG_ID]
    timeouts = {task["task_id"]: task["execution_timeout"] for task in dag["tasks"]}
    assert timeouts == {step: module.TIMEOUTS[step].total_seconds() for step in SCHEDULED_STEPS}
    assert max(timeouts, key=timeouts.__getitem__) == "train"
    # Every try of every step timing out, with the waits between tries: still within the run's
    # own timeout, which is under the daily schedule, so a stuck run never delays the next day's.
    worst = sum((task["retries"] + 1) * task["execution_timeout"] + task["retries"] * task["retry_delay"]
                for task in dag["tasks"])
    assert worst <= dag["dagrun_timeout"] < timedelta(days=1).total_seconds(), (worst, dag["dagrun_timeout"])


@pytest.mark.parametrize(("scenario", "expected"), [
    ("no_home", ["LAKEBOOST_HOME={tmp}/nowhere: no such directory"]),
    ("no_zip", ["LAKEBOOST_HOME={tmp}/home_without_zip: missing {tmp}/home_without_zip/build/lakeboost.zip"]),
    ("missing_jar", ["LAKEBOOST_JARS: no such file: {tmp}/gone.jar"]),
    ("no_delta_jar", ["LAKEBOOST_JARS holds no Delta jar (delta-spark_*.jar)"]),
    ("no_jars", ["LAKEBOOST_JARS is not set"]),
])
def test_a_missing_path_or_jar_fails_the_parse_naming_the_setting(parsed: dict[str, Any], scenario: str,
                                                                   expected: list[str]) -> None:
    result = parsed[scenario]
    assert result["dags"] == {}
    (error,) = result["import_errors"].values()
    assert "LakeboostDagError: lakeboost_pipeline: " in error
    for text in expected:
        assert text.format(tmp=parsed["tmp"]) in error, error


def test_jars_on_shared_storage_are_not_checked_on_the_worker(parsed: dict[str, Any]) -> None:
    assert parsed["remote_jars"]["import_errors"] == {}
    (task, *_) = parsed["remote_jars"]["dags"][DAG_ID]["tasks"]
    assert task["jars"] == "hdfs:///jars/delta-spark_4.2_2.13-4.4.0.jar"


@pytest.mark.e2e
def test_airflow_runs_the_ingest_task_on_a_local_master_and_pushes_its_summary_to_xcom(
        spark: SparkSession, lakeboost_home: Path, jars: list[str], tmp_path: Path) -> None:
    python = airflow_python()
    airflow = str(python.parent / "airflow")
    lake, landing = tmp_path / "lake", tmp_path / "landing"
    config = load_config("local", [f"storage.root={lake}", f"storage.landing={landing}", "demo.rows=2000",
                                   "demo.days=30"], conf_dir=REPO / "conf")
    generated = run_step(spark, config, "generate")
    runtime_bin = str(Path(sys.executable).parent)
    environ = airflow_environ(
        tmp_path / "airflow_home",
        LAKEBOOST_HOME=str(lakeboost_home), LAKEBOOST_JARS=",".join(jars), LAKEBOOST_PYTHON=sys.executable,
        # What conf/cluster reads, and the secrets the driver takes from the worker's environment.
        LAKEBOOST_STORAGE_ROOT=str(lake), LAKEBOOST_LANDING=str(landing),
        CUSTOMERS_JDBC_URL=f"jdbc:sqlite:{landing}/customers.db", LAKEBOOST_PII_KEY=DEMO_PII_KEY,
        AIRFLOW_CONN_SPARK_DEFAULT=json.dumps({"conn_type": "spark", "host": "local[1]"}),
        PATH=f"{runtime_bin}{os.pathsep}{os.environ['PATH']}")  # spark-submit: the runtime's pyspark

    def run(*args: str, timeout: int = 120) -> str:
        done = subprocess.run([airflow, *args], env=environ, capture_output=True, text=True, timeout=timeout,
                              check=False)
        assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    run("db", "migrate")
    run("dags", "reserialize")
    # A run of our own: `tasks test` deletes the temporary run it would create, and its XComs with it.
    run("dags", "trigger", DAG_ID, "--run-id", "lakeboost_test", "--logical-date", "2026-01-02T00:00:00+00:00")
    run("tasks", "test", DAG_ID, "ingest", "lakeboost_test", timeout=600)

    # Airflow 3 has no XCom command; the sqlite database under AIRFLOW_HOME holds them as JSON.
    with sqlite3.connect(tmp_path / "airflow_home" / "airflow.db") as db:
        rows = db.execute("SELECT value FROM xcom WHERE dag_id = ? AND task_id = 'ingest' AND run_id = ? "
                          "AND key = 'return_value'", (DAG_ID, "lakeboost_test")).fetchall()
    (value,), = rows
    summary = json.loads(value)
    assert summary["step"] == "ingest" and summary["seconds"] > 0
    catalog = TableCatalog(spark, config.storage)
    for source in SOURCES:
        written = summary["details"][source]["rows_written"]
        assert written > 0 and catalog.read(f"bronze.{source}").count() == written, source
        assert summary["versions"][f"bronze.{source}"] == catalog.version(f"bronze.{source}"), source
    assert summary["details"]["transactions"]["rows_read"] == generated.details["transaction_lines"]
    assert summary["rows_written"] == sum(summary["details"][s]["rows_written"] for s in SOURCES)
    assert summary["rows_quarantined"] == catalog.read("bronze.quarantine").count() > 0
    assert summary["rows_read"] == summary["rows_written"] + summary["rows_quarantined"] + summary["rows_skipped"]
