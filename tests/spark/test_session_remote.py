"""The session factory builds a Spark Connect client when SPARK_REMOTE or spark.remote names a server."""

from __future__ import annotations

import os
import subprocess
import sys

from lakeboost.config.model import SparkConfig
from lakeboost.spark.session import remote_url

from tests.conftest import REPO


def test_spark_remote_in_the_environment_wins_over_the_config() -> None:
    config = SparkConfig(conf={"spark.remote": "sc://from-config:15002"})
    assert remote_url(config, environ={}) == "sc://from-config:15002"
    assert remote_url(config, environ={"SPARK_REMOTE": "sc://from-env:15002"}) == "sc://from-env:15002"
    assert remote_url(SparkConfig(), environ={}) is None


def test_a_job_with_spark_remote_runs_on_the_connect_server(connect_server) -> None:
    # A process of its own, as a job is: pyspark refuses a Connect client beside the classic
    # session this test process may hold.
    url = connect_server.url
    job = ("import logging, sys; logging.basicConfig(level=logging.INFO, stream=sys.stdout)\n"
           "from lakeboost.config import load_config\nfrom lakeboost.spark import build_spark\n"
           "from lakeboost.spark.kind import session_kind\n"
           f"spark = build_spark(load_config('local', conf_dir={str(REPO / 'conf')!r}).spark)\n"
           "print('kind', session_kind(spark), spark.range(5).selectExpr('sum(id)').first()[0])\n")
    env = {**os.environ, "SPARK_REMOTE": url, "PYTHONPATH": f"{REPO / 'lib'}:{REPO}"}
    env.pop("SPARK_CONNECT_MODE_ENABLED", None)
    done = subprocess.run([sys.executable, "-c", job], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "kind connect 10" in done.stdout
    assert "Spark Connect session" in done.stdout and url in done.stdout
