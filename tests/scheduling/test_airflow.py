"""The Airflow DAG (scheduling/airflow/lakeboost_dag.py): its steps, and its graph when Airflow is installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from lakeboost.steps import FRAMEWORK_STEPS

REPO = Path(__file__).resolve().parents[2]
DAG_FILE = REPO / "scheduling" / "airflow" / "lakeboost_dag.py"
SCHEDULED_STEPS = list(FRAMEWORK_STEPS)


def load_dag_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lakeboost_dag", DAG_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_airflow_dag_steps_are_the_scheduled_pipeline_steps() -> None:
    module = load_dag_module()
    assert list(module.STEPS) == SCHEDULED_STEPS
    assert module.RETRIES["train"] == 2 and module.DEFAULT_RETRIES == 1
    assert module.SPARK_CONF["spark.dynamicAllocation.enabled"] == "false"


def test_airflow_dag_parses_with_the_pipeline_graph(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if importlib.util.find_spec("airflow") is None:
        pytest.skip("Airflow is not installed (optional extra: pip install -e '.[airflow]')")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    monkeypatch.setenv("LAKEBOOST_HOME", str(REPO))
    from airflow.models import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE.parent))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["lakeboost_pipeline"]
    assert dag.catchup is False
    tasks = {task.task_id: task for task in dag.tasks}
    assert list(tasks) == SCHEDULED_STEPS
    for i, step in enumerate(SCHEDULED_STEPS):
        task = tasks[step]
        assert task.upstream_task_ids == ({SCHEDULED_STEPS[i - 1]} if i else set())
        assert task.retries == (2 if step == "train" else 1)
        assert Path(task.application) == REPO / "jobs" / f"{step}.py" and Path(task.application).is_file()
        assert task.application_args[:2] == ["--env", "cluster"]
