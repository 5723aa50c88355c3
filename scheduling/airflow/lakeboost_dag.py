"""Airflow DAG `lakeboost_pipeline`: one spark-submit per pipeline step, daily at 03:00 UTC.

Copy (or symlink) this file into the Airflow dags folder. The Airflow worker runs `spark-submit`
(the `spark_default` connection says where: YARN, Kubernetes, standalone), so it needs a lakeboost
checkout at LAKEBOOST_HOME with the package zip built (see scheduling/README.md). Settings come from
the worker's environment when the DAG is parsed:

* LAKEBOOST_HOME: the checkout (default /opt/lakeboost): jobs/, conf/ and build/lakeboost.zip.
* LAKEBOOST_JARS: comma-separated JVM jars (Delta, JDBC drivers), e.g. the output of
  `python -m lakeboost.spark.prefetch --env cluster --separator ,`.
* LAKEBOOST_PYTHON: the Python with lakeboost's dependencies on every node (spark.pyspark.python).

Secrets (LAKEBOOST_PII_KEY, JDBC passwords) are not passed through Airflow: the driver reads them
from its own environment (client mode: the worker's) or from a Databricks secret scope.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

# The framework's steps in pipeline order (lakeboost.steps.FRAMEWORK_STEPS: the config's
# pipeline.steps without the demo's `generate`, which makes demo data only); kept literal so the
# scheduler needs neither pyspark nor lakeboost installed. tests/scheduling/test_airflow.py checks it.
STEPS = ("ingest", "refine", "features", "train", "promote", "score", "score_stream", "monitor")
# xgboost.spark fits in a barrier stage, which Spark does not retry task by task; lakeboost
# retries the fit (training.model.fit_retries), and Airflow retries the whole step after that.
RETRIES = {"train": 2}
DEFAULT_RETRIES = 1

LAKEBOOST_HOME = os.environ.get("LAKEBOOST_HOME", "/opt/lakeboost")
APPLICATION_ARGS = [
    "--env", "cluster",
    # The package is imported from the zip, whose location says nothing about conf/: name it.
    "--conf-dir", f"{LAKEBOOST_HOME}/conf",
]
SPARK_CONF = {
    # Barrier mode needs all training workers at once; executors released mid-stage stall it.
    "spark.dynamicAllocation.enabled": "false",
    "spark.pyspark.python": os.environ.get("LAKEBOOST_PYTHON", f"{LAKEBOOST_HOME}/.venv/bin/python"),
}

try:
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    try:
        from airflow.sdk import DAG, chain  # Airflow 3
    except ImportError:  # Airflow 2.9/2.10
        from airflow import DAG
        from airflow.models.baseoperator import chain
except ImportError:  # Airflow is an optional extra: without it this file defines no DAG.
    SparkSubmitOperator = None

if SparkSubmitOperator is not None:
    with DAG(
        dag_id="lakeboost_pipeline",
        description="lakeboost: ingest -> refine -> features -> train -> promote -> score -> score_stream -> monitor",
        schedule="0 3 * * *",
        start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        max_active_runs=1,
        default_args={"retries": DEFAULT_RETRIES, "retry_delay": timedelta(minutes=5)},
        tags=["lakeboost"],
    ) as dag:
        chain(*[
            SparkSubmitOperator(
                task_id=step,
                conn_id="spark_default",
                name=f"lakeboost-{step}",
                application=f"{LAKEBOOST_HOME}/jobs/{step}.py",
                application_args=APPLICATION_ARGS,
                py_files=f"{LAKEBOOST_HOME}/build/lakeboost.zip",
                jars=os.environ.get("LAKEBOOST_JARS") or None,
                conf=SPARK_CONF,
                retries=RETRIES.get(step, DEFAULT_RETRIES),
                retry_delay=timedelta(minutes=10 if step in RETRIES else 5),
            )
            for step in STEPS
        ])
