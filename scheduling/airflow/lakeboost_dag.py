"""Airflow DAG `lakeboost_pipeline`: one spark-submit per pipeline step, daily at 03:00 UTC.

Copy (or symlink) this file into the Airflow dags folder. The Airflow worker runs `spark-submit`
(the `spark_default` connection says where: YARN, Kubernetes, standalone, local) in client mode,
so it needs a lakeboost checkout at LAKEBOOST_HOME with the package zip built (see
scheduling/README.md). Settings come from the environment of the process that parses the DAG:

* LAKEBOOST_HOME: the checkout (default /opt/lakeboost): jobs/, conf/ and build/lakeboost.zip.
* LAKEBOOST_JARS: comma-separated JVM jars, a Delta jar (delta-spark_*.jar) among them, e.g. the
  output of `python -m lakeboost.spark.prefetch --env cluster --separator ,`.
* LAKEBOOST_PYTHON: the Python with lakeboost's dependencies on every node (spark.pyspark.python).
* LAKEBOOST_ENV: the config overlay the steps run with (default cluster).

A missing checkout, job file, config directory, package zip or jar, or no Delta jar, fails the
parse with one message naming each setting and path (an import error in the Airflow UI), rather
than every task at 03:00. Each task returns its step's summary (rows, table versions, what the
step reports: the model version, the report's path), which Airflow pushes to XCom.

Secrets (LAKEBOOST_PII_KEY, JDBC passwords) are not passed through Airflow: the driver reads them
from its own environment (client mode: the worker's) or from a Databricks secret scope.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

# The framework's steps in pipeline order (lakeboost.steps.FRAMEWORK_STEPS: the config's
# pipeline.steps without the demo's `generate`, which makes demo data only); kept literal so the
# scheduler needs neither pyspark nor lakeboost installed. tests/scheduling/test_airflow.py checks it.
STEPS = ("ingest", "refine", "features", "train", "promote", "score", "score_stream", "monitor")
# xgboost.spark fits in a barrier stage, which Spark does not retry task by task; lakeboost
# retries the fit (training.model.fit_retries), and Airflow retries the whole step after that.
RETRIES = {"train": 2}
DEFAULT_RETRIES = 1
# How long a step may run before Airflow kills its spark-submit (and with it, in client mode, the
# driver) and fails or retries it: with one run at a time, a hung step (a barrier fit waiting for
# workers that never come) would otherwise hold back every later scheduled run. Generous next to
# what the steps take on the data they were sized for; the fit is the longest.
TIMEOUTS = {
    "ingest": timedelta(hours=1),
    "refine": timedelta(hours=1),
    "features": timedelta(hours=1),
    "train": timedelta(hours=3),
    "promote": timedelta(minutes=20),
    "score": timedelta(hours=1),
    "score_stream": timedelta(hours=1),
    "monitor": timedelta(minutes=30),
}
RETRY_DELAY = {"train": timedelta(minutes=10)}
DEFAULT_RETRY_DELAY = timedelta(minutes=5)
# A run, retries included, ends before the next day's is due (the tests check that every step's
# timeouts and retries fit in it): a run stuck past it is failed instead of delaying the next.
DAGRUN_TIMEOUT = timedelta(hours=23)
# The jar no step runs without: Delta's (delta-spark_<Spark minor>_<Scala>-<version>.jar; delta-core_ before
# Delta 3). Which Spark minor it is built for is not checked here: the scheduler has no Spark to compare with.
DELTA_JAR_PREFIXES = ("delta-spark_", "delta-core_")


class LakeboostDagError(ValueError):
    """A setting names a path that does not exist, or a step left no summary; the message says which and the fix."""


def _local(path: str) -> Path | None:
    """The local path of a jar or file argument; None for a URI the worker cannot check (hdfs://, s3a://)."""
    if path.startswith("file:"):
        return Path(path.removeprefix("file:").removeprefix("//"))
    return None if "://" in path else Path(path)


def settings(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The DAG's settings from the environment, every path checked.

    Raises:
        LakeboostDagError: all the problems at once, each with its setting, path and remedy.
    """
    home = Path(environ.get("LAKEBOOST_HOME", "/opt/lakeboost"))
    jars = [jar.strip() for jar in environ.get("LAKEBOOST_JARS", "").split(",") if jar.strip()]
    problems: list[str] = []
    if not home.is_dir():
        problems.append(f"LAKEBOOST_HOME={home}: no such directory (the lakeboost checkout the steps run from)")
    else:
        needed = [home / "jobs" / f"{step}.py" for step in STEPS] + [home / "conf", home / "build" / "lakeboost.zip"]
        missing = [str(path) for path in needed if not path.exists()]
        if missing:
            problems.append(f"LAKEBOOST_HOME={home}: missing {', '.join(missing)} (jobs/ and conf/ come with the "
                            "checkout; build/lakeboost.zip is built as scheduling/README.md says)")
    if not jars:
        problems.append("LAKEBOOST_JARS is not set: give the JVM jars, comma-separated, a Delta jar among them "
                        "(python -m lakeboost.spark.prefetch --env cluster --separator ,)")
    else:
        absent = [jar for jar in jars if (local := _local(jar)) is not None and not local.is_file()]
        if absent:
            problems.append(f"LAKEBOOST_JARS: no such file: {', '.join(absent)}")
        if not any(jar.rsplit("/", 1)[-1].startswith(DELTA_JAR_PREFIXES) for jar in jars):
            problems.append(f"LAKEBOOST_JARS holds no Delta jar (delta-spark_*.jar), found {jars}: "
                            "every step reads or writes Delta tables")
    if problems:
        raise LakeboostDagError("lakeboost_pipeline: " + "; ".join(problems))
    return {
        "home": home,
        "jars": ",".join(jars),
        "application_args": [
            "--env", environ.get("LAKEBOOST_ENV", "cluster"),
            # The package is imported from the zip, whose location says nothing about conf/: name it.
            "--conf-dir", str(home / "conf"),
        ],
        "conf": {
            # Barrier mode needs all training workers at once; executors released mid-stage stall it.
            "spark.dynamicAllocation.enabled": "false",
            "spark.pyspark.python": environ.get("LAKEBOOST_PYTHON", str(home / ".venv" / "bin" / "python")),
        },
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

    class LakeboostStepOperator(SparkSubmitOperator):
        """spark-submit of one lakeboost step; returns the step's summary, which Airflow pushes to XCom.

        The step writes its summary (`lakeboost run <step> --summary-json PATH`) to a file on the
        worker, which the driver can write in client mode (it runs there); the task fails when a
        step that succeeded left none, e.g. in cluster deploy mode, where the driver runs elsewhere.
        """

        def execute(self, context: Any) -> dict[str, Any]:
            given = list(self.application_args or [])
            with tempfile.TemporaryDirectory(prefix=f"lakeboost-{self.task_id}-") as tmp:
                path = Path(tmp) / "summary.json"
                self.application_args = [*given, "--summary-json", str(path)]
                try:
                    super().execute(context)
                finally:
                    self.application_args = given
                if not path.is_file():
                    raise LakeboostDagError(
                        f"{self.task_id}: spark-submit succeeded but the step wrote no summary to {path}; "
                        "the driver must run on the Airflow worker (client deploy mode on the spark_default "
                        "connection)")
                return json.loads(path.read_text())

    SETTINGS = settings()
    with DAG(
        dag_id="lakeboost_pipeline",
        description="lakeboost: " + " -> ".join(STEPS),
        schedule="0 3 * * *",
        start_date=datetime(2026, 1, 1, tzinfo=timezone.utc),
        catchup=False,
        max_active_runs=1,
        dagrun_timeout=DAGRUN_TIMEOUT,
        default_args={"retries": DEFAULT_RETRIES, "retry_delay": DEFAULT_RETRY_DELAY},
        tags=["lakeboost"],
    ) as dag:
        chain(*[
            LakeboostStepOperator(
                task_id=step,
                conn_id="spark_default",
                name=f"lakeboost-{step}",
                application=str(SETTINGS["home"] / "jobs" / f"{step}.py"),
                application_args=SETTINGS["application_args"],
                py_files=str(SETTINGS["home"] / "build" / "lakeboost.zip"),
                jars=SETTINGS["jars"],
                conf=SETTINGS["conf"],
                execution_timeout=TIMEOUTS[step],
                retries=RETRIES.get(step, DEFAULT_RETRIES),
                retry_delay=RETRY_DELAY.get(step, DEFAULT_RETRY_DELAY),
            )
            for step in STEPS
        ])
