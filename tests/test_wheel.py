"""The wheel, as a user gets it: built from the repository, installed with the `spark` extra in a
clean virtualenv, and run through its `lakeboost` command from a directory outside the checkout.

Nothing of the checkout is visible to the installed command (no PYTHONPATH, another working
directory): the config and the demo application it runs are the ones packed into the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml
from lakeboost.config import load_config
from lakeboost.io import TableCatalog
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from tests.conftest import DEMO_PII_KEY, REPO, TEST_JOB_SETS

pytestmark = pytest.mark.e2e

# What setup.py needs to build the wheel: a copy of just these proves nothing else is read.
BUILD_INPUTS = ("setup.py", "pyproject.toml", "MANIFEST.in", "lib", "conf", "examples/card_fraud")
PROJECT = "lakeboost/default_project"
# The small demo, up to scoring (stream scoring and monitoring are the suite's other e2e tests'),
# on the suite's job settings (conftest.TEST_JOB_SETS): few partitions, since on a few thousand
# rows Spark's time goes to tasks, not data, and no generated code, since the command's JVM is a
# fresh one that would compile every query's Java (the standalone-cluster and Airflow tests run
# the shipped config's code generation). The run alone, alternated on this 2-core machine at
# load 10-14: 349 s with code generation, 268 s without.
RUN_OVERRIDES = ["demo.rows=8000", "demo.days=120", "training.model.n_estimators=40",
                 "training.model.params={max_depth: 4, learning_rate: 0.2}", *TEST_JOB_SETS]


def clean_env(venv: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's shell with only the venv on PATH: no checkout on PYTHONPATH,
    no config directory or Spark of the test run."""
    dropped = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "SPARK_HOME", "LAKEBOOST_", "PYSPARK_", "SPARK_REMOTE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return {**env, "SPARK_LOCAL_IP": "127.0.0.1", **extra}


def timed(label: str, times: dict[str, float], command: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    times[label] = round(time.monotonic() - started, 1)
    print(f"\nwheel test: {label} {times[label]}s")
    assert result.returncode == 0, (f"{label}: exit {result.returncode}\n{result.stdout[-3000:]}\n"
                                    f"{result.stderr[-6000:]}")
    return result


@pytest.fixture(scope="module")
def times() -> dict[str, float]:
    measured: dict[str, float] = {}
    yield measured
    print("\nwheel test times: " + ", ".join(f"{label} {seconds}s" for label, seconds in measured.items()))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory, times: dict[str, float]) -> Path:
    source, out = tmp_path_factory.mktemp("wheel-source"), tmp_path_factory.mktemp("wheel")
    for name in BUILD_INPUTS:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        copy(REPO / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__", "*.egg-info")}
                                            if (REPO / name).is_dir() else {}))
    timed("build", times, [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)])
    (built,) = out.glob("lakeboost-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory, times: dict[str, float]) -> Path:
    """A new virtualenv from the interpreter this suite's venv was made from, with the wheel[spark]."""
    root = tmp_path_factory.mktemp("clean-venv") / "venv"
    base_python = getattr(sys, "_base_executable", sys.executable)
    timed("venv", times, [base_python, "-m", "venv", str(root)])
    # --no-compile: byte-compiling pyspark's and mlflow's thousands of modules took most of the
    # install's CPU; Python compiles what it imports when the command runs.
    timed("install", times, [str(root / "bin" / "python"), "-m", "pip", "install", "-q", "--no-compile",
                             "--disable-pip-version-check", f"{wheel}[spark]"], env=clean_env(root))
    return root


def test_wheel_carries_the_default_config_and_the_demo_application(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    config = {f"{PROJECT}/{p.relative_to(REPO)}" for p in (REPO / "conf").rglob("*") if p.suffix in (".yml", ".json")}
    demo = {f"{PROJECT}/{p.relative_to(REPO)}" for p in (REPO / "examples" / "card_fraud").glob("*.py")}
    assert {f"{PROJECT}/conf/base/application.yml", f"{PROJECT}/conf/cluster/spark.yml",
            f"{PROJECT}/conf/lakeboost.schema.json", f"{PROJECT}/examples/card_fraud/generator.py"} <= config | demo
    assert config | demo <= names, sorted((config | demo) - names)
    assert "lakeboost/py.typed" in names and "lakeboost/__main__.py" in names
    entry_points = zipfile.ZipFile(wheel).read("lakeboost-0.1.0.dist-info/entry_points.txt").decode()
    assert "lakeboost = lakeboost.cli:console" in entry_points
    # Only the package: no tests, jobs, notebooks or other applications.
    assert {name.split("/")[0] for name in names} == {"lakeboost", "lakeboost-0.1.0.dist-info"}
    assert not [name for name in names if "bike_rentals" in name or "deliveries" in name or "__pycache__" in name]


def test_installed_command_uses_the_packaged_config_without_conf_dir(venv: Path, tmp_path: Path) -> None:
    elsewhere, home = tmp_path / "elsewhere", tmp_path / "home"
    elsewhere.mkdir()
    env = clean_env(venv, LAKEBOOST_DATA_HOME=str(home))
    shown = subprocess.run(["lakeboost", "config", "show"], cwd=elsewhere, env=env, capture_output=True,
                           text=True, check=False)
    assert shown.returncode == 0, shown.stderr
    storage = yaml.safe_load(shown.stdout)["storage"]
    # The packaged config is read-only in site-packages: its data go under LAKEBOOST_DATA_HOME.
    assert storage["root"] == str(home / "data" / "lakehouse") and storage["landing"] == str(home / "data" / "landing")
    # (one command: each start of the installed command costs seconds, compiling what it imports)


def test_installed_command_runs_the_small_demo_from_outside_the_checkout(
        venv: Path, tmp_path: Path, spark: SparkSession, times: dict[str, float]) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = clean_env(venv, LAKEBOOST_PII_KEY=DEMO_PII_KEY)
    timed("init", times, ["lakeboost", "init", "project"], cwd=tmp_path, env=env)
    overrides = [arg for override in RUN_OVERRIDES for arg in ("--set", override)]
    timed("pipeline", times, ["lakeboost", "run", "pipeline", "--conf-dir", str(project / "conf"), "--to", "score",
                              *overrides], cwd=elsewhere, env=env)

    # The config's relative paths resolved against project/conf, not the working directory.
    assert (project / "data" / "lakehouse").is_dir() and not (elsewhere / "data").exists()
    config = load_config("local", RUN_OVERRIDES, conf_dir=project / "conf", environ={})
    assert config.storage.root == str(project / "data" / "lakehouse")
    catalog = TableCatalog(spark, config.storage)
    for table in ("silver.transactions", "gold.transaction_features", config.scoring.predictions_table):
        assert catalog.read(table).count() > 0, table
    low, high = catalog.read(config.scoring.predictions_table).agg(F.min("score"), F.max("score")).first()
    assert 0 <= low < high <= 1
