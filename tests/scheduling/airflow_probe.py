"""Parse the DAG folder with Airflow's DagBag once per environment given; print what it found as JSON.

Run by the Airflow virtualenv's Python (tests/scheduling/test_airflow.py), which has Airflow and
neither pytest nor lakeboost: `python airflow_probe.py DAG_FOLDER OUT.json < scenarios.json` (Airflow
logs to stdout, so the results go to a file), where the
scenarios map a name to the environment variables to parse under. Each result holds the import
errors and, per task, the operator's arguments as Airflow holds them.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def describe(dag: Any) -> dict[str, Any]:
    return {
        "schedule": str(dag.schedule),
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "dagrun_timeout": dag.dagrun_timeout.total_seconds() if dag.dagrun_timeout else None,
        "tasks": [
            {
                "task_id": task.task_id,
                "operator": type(task).__name__,
                "bases": [cls.__name__ for cls in type(task).__mro__],
                "upstream": sorted(task.upstream_task_ids),
                "conn_id": task._conn_id,
                "application": task.application,
                "application_args": task.application_args,
                "py_files": task.py_files,
                "jars": task.jars,
                "conf": task.conf,
                "execution_timeout": task.execution_timeout.total_seconds() if task.execution_timeout else None,
                "retries": task.retries,
                "retry_delay": task.retry_delay.total_seconds(),
                "do_xcom_push": task.do_xcom_push,
            }
            for task in dag.tasks
        ],
    }


def main() -> None:
    from airflow.dag_processing.dagbag import DagBag

    folder = sys.argv[1]
    results = {}
    for name, environ in json.load(sys.stdin).items():
        saved = {key: os.environ.get(key) for key in environ}
        os.environ.update({key: value for key, value in environ.items() if value is not None})
        for key in [key for key, value in environ.items() if value is None]:
            os.environ.pop(key, None)
        try:
            bag = DagBag(dag_folder=folder)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        results[name] = {
            "import_errors": {os.path.basename(path): error for path, error in bag.import_errors.items()},
            "dags": {dag_id: describe(dag) for dag_id, dag in bag.dags.items()},
        }
    with open(sys.argv[2], "w") as out:
        json.dump(results, out)


if __name__ == "__main__":
    main()
