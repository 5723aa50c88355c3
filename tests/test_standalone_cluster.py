"""spark-submit.sh on a real Spark standalone cluster: a master and two 1-core workers on loopback.

The pipeline's train and score steps are submitted in client mode with the packed
Python environment (the default for a non-local master) against a copy of the shared demo
lakehouse (its data steps are what every other end-to-end test already ran); the event log shows
the xgboost fit's barrier stage running on both executors. A short local-mode submission checks
what spark-submit.sh ships without a cluster (the package zip, the config and the applications'
packages).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lakeboost.config import load_config
from lakeboost.io import TableCatalog
from lakeboost.spark.cluster import StandaloneCluster
from pyspark.sql import SparkSession

from tests.conftest import DEMO_OVERRIDES, REPO

PII_KEY = "standalone-test-key-0123456789abcdef"
DEMO = [*DEMO_OVERRIDES, "training.model.n_estimators=60", "training.model.num_workers=2"]
SUBMIT_TIMEOUT = 1800  # a first run also packs the Python environment (a few minutes)


@dataclass(frozen=True)
class Submission:
    argv: list[str]
    spark_submit: str  # the spark-submit command spark-submit.sh printed
    returncode: int | None  # None: timed out and killed
    seconds: float
    log: Path

    def summary(self) -> dict[str, Any]:
        """The pipeline's final machine-readable summary line."""
        lines = [line for line in self.log.read_text(errors="replace").splitlines()
                 if "lakeboost.summary: " in line and '"step": "pipeline"' in line]
        assert lines, f"no pipeline summary in {self.log}"
        return json.loads(lines[-1].split("lakeboost.summary: ", 1)[1])


def overrides(base: Path) -> list[str]:
    return [f"storage.root={base}/lake", f"storage.landing={base}/landing", *DEMO]


def submit(spark_options: list[str], base: Path, steps: list[str], extra: tuple[str, ...] = ()) -> Submission:
    """Run ./spark-submit.sh [options] jobs/pipeline.py [steps] --set ... as a user would; time it."""
    argv = ["./spark-submit.sh", *spark_options, "jobs/pipeline.py", *steps, "--log-json",
            *[arg for override in [*overrides(base), *extra] for arg in ("--set", override)]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_GATEWAY")}
    env.update({"LAKEBOOST_PII_KEY": PII_KEY, "CUSTOMERS_JDBC_URL": f"jdbc:sqlite:{base}/landing/customers.db",
                "SPARK_LOCAL_IP": "127.0.0.1"})
    log = base / "submit.log"
    started = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            returncode: int | None = process.wait(timeout=SUBMIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
            returncode = None
    seconds = time.monotonic() - started
    printed = [line for line in re.findall(r"^spark-submit\.sh: (.*)$", log.read_text(errors="replace"), re.MULTILINE)
               if "/bin/spark-submit " in line]
    return Submission(argv, printed[-1] if printed else "", returncode, seconds, log)


def barrier_stage_executors(event_dir: Path) -> dict[int, set[str]]:
    """Barrier stages in the event logs under `event_dir`: stage id -> executors with a successful task.

    A stage is a barrier stage when one of its RDDs is (`RDD Info` -> `Barrier`), which is how
    xgboost.spark runs its workers.
    """
    barrier: set[int] = set()
    executors: dict[int, set[str]] = defaultdict(set)
    for file in sorted(p for p in event_dir.rglob("*") if p.is_file() and not p.name.startswith(".")):
        for line in file.read_text(errors="replace").splitlines():
            event = json.loads(line)
            if event["Event"] == "SparkListenerStageSubmitted":
                info = event["Stage Info"]
                if any(rdd.get("Barrier") for rdd in info.get("RDD Info", [])):
                    barrier.add(info["Stage ID"])
            elif event["Event"] == "SparkListenerTaskEnd" and event["Task End Reason"]["Reason"] == "Success":
                executors[event["Stage ID"]].add(event["Task Info"]["Executor ID"])
    return {stage: executors[stage] for stage in sorted(barrier)}


def failure_report(submission: Submission, work_dir: Path) -> str:
    """The submission's log tail and the executors' stderr tails, for an assertion message."""
    parts = [f"{submission.log}:\n{submission.log.read_text(errors='replace')[-6000:]}"]
    for stderr in sorted(work_dir.glob("worker-*/app-*/*/stderr")):
        parts.append(f"{stderr}:\n{stderr.read_text(errors='replace')[-3000:]}")
    return "\n\n".join(parts)


@pytest.mark.e2e
def test_pipeline_trains_on_both_workers_of_a_standalone_cluster(
        spark: SparkSession, demo, tmp_path_factory: pytest.TempPathFactory) -> None:
    config, _ = demo
    base = tmp_path_factory.mktemp("cluster")
    # A copy of the demo lakehouse: the cluster's model versions stay out of the shared registry.
    shutil.copytree(config.storage.root, base / "lake")
    shutil.copytree(config.storage.landing, base / "landing")
    events = base / "events"
    events.mkdir()
    cluster = StandaloneCluster(base / "spark", workers=2, cores=1, memory="2g")
    try:
        cluster.start()
        workers = cluster.alive_workers()
        print(f"\nstandalone cluster {cluster.master_url}: {len(workers)} workers "
              f"{[(w['host'], w['cores'], w['memory']) for w in workers]}")
        submission = submit(["--master", cluster.master_url, "--conf", "spark.eventLog.enabled=true",
                             "--conf", f"spark.eventLog.dir=file://{events}",
                             # Spark 4 compresses event logs (zstd) by default; JSON lines are read here.
                             "--conf", "spark.eventLog.compress=false",
                             "--executor-cores", "1", "--executor-memory", "1g"], base,
                            # The data steps, streaming and promotion add nothing to what this
                            # checks (the copied registry's champion is scored).
                            ["--only", "train", "--only", "score"])
    finally:
        cluster.stop()
    assert cluster.processes_gone(), f"left running: {cluster.leftover_processes()}"
    packed = "packing the executors' Python environment" in submission.log.read_text(errors="replace")
    print(f"command: {' '.join(submission.argv)}\nspark-submit: {submission.spark_submit}\n"
          f"cluster wall time: {submission.seconds:.1f}s (exit {submission.returncode}"
          f"{', including packing the environment' if packed else ''})")

    assert submission.returncode == 0, failure_report(submission, base / "spark")
    args = shlex.split(submission.spark_submit)
    assert args[args.index("--archives") + 1].endswith(".tar.gz#environment")
    assert "spark.pyspark.python=./environment/bin/python" in args
    summary = submission.summary()
    print(f"pipeline seconds (driver's own clock): {summary['seconds']}; "
          f"steps: { {k: v['seconds'] for k, v in summary['details'].items()} }")
    details = summary["details"]
    assert sorted(details) == ["score", "train"] and details["train"]["model_version"] is not None

    copied = load_config("local", overrides(base), conf_dir=REPO / "conf")
    catalog = TableCatalog(spark, copied.storage)
    scored = catalog.read("gold.predictions").filter(f"model_version = {details['score']['model_version']}")
    assert scored.count() > 0

    stages = barrier_stage_executors(events)
    training_executors = set().union(*stages.values()) if stages else set()
    print(f"barrier stages -> executors: {stages}; executors in training: {len(training_executors)}")
    assert stages, f"no barrier stage in the event log under {events}"
    assert len(stages[max(stages)]) == 2, f"the last xgboost fit ran on executors {stages[max(stages)]}, expected 2"


@pytest.mark.e2e
def test_local_mode_submission_ships_the_package_config_and_application(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    # Only the demo's own step and ingest: the whole pipeline in local mode is what `make demo`
    # and the shared demo lakehouse already run (a wall-time comparison belongs in bench/).
    base = tmp_path_factory.mktemp("local")

    # Two weeks of 1,000 payments: what is shipped does not depend on the data's size.
    submission = submit([], base, ["--only", "generate", "--only", "ingest"], ("demo.rows=1000", "demo.days=14"))

    print(f"\ncommand: {' '.join(submission.argv)}\nspark-submit: {submission.spark_submit}\n"
          f"local wall time: {submission.seconds:.1f}s (exit {submission.returncode})")
    assert submission.returncode == 0, submission.log.read_text(errors="replace")[-6000:]
    args = shlex.split(submission.spark_submit)
    assert args[args.index("--master") + 1] == "local[*]" and "#environment" not in submission.spark_submit
    details = submission.summary()["details"]
    assert list(details) == ["generate", "ingest"] and details["ingest"]["rows_written"] > 0
