"""Scheduled runs and containers: the bundle, the crontab and the Dockerfile (Airflow: tests/scheduling/).

Fast and Spark-free: files are parsed, not deployed. The image is built only when a Docker engine
is reachable.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from lakeboost.config import load_config
from lakeboost.steps import FRAMEWORK_STEPS

REPO = Path(__file__).resolve().parents[1]
SCHEMA = Path(__file__).parent / "schemas" / "bundle_job.schema.json"
CRON_FILE = REPO / "scheduling" / "cron" / "lakeboost.cron"
# The scheduled pipeline: the framework's steps in pipeline order (the demo's `generate` is not scheduled).
SCHEDULED_STEPS = list(FRAMEWORK_STEPS)
SECRET_REF = re.compile(r"^\{\{secrets/[\w.-]+/[\w.-]+\}\}$")
BUNDLE_REF = re.compile(r"\$\{([\w.]+)\}")


def load_bundle() -> dict[str, Any]:
    """databricks.yml with resources/*.yml merged in, as the CLI's `include` does."""
    bundle = yaml.safe_load((REPO / "databricks.yml").read_text())
    resources: dict[str, Any] = {}
    for pattern in bundle["include"]:
        for file in sorted(REPO.glob(pattern)):
            for kind, items in (yaml.safe_load(file.read_text()).get("resources") or {}).items():
                resources.setdefault(kind, {}).update(items)
    return {**bundle, "resources": resources}


@pytest.fixture(scope="module")
def bundle() -> dict[str, Any]:
    return load_bundle()


@pytest.fixture(scope="module")
def job(bundle: dict[str, Any]) -> dict[str, Any]:
    return bundle["resources"]["jobs"]["lakeboost_pipeline"]


@pytest.fixture(scope="module")
def tasks(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {task["task_key"]: task for task in job["tasks"]}


# --- Databricks Asset Bundle -------------------------------------------------------------------

def test_bundle_matches_the_offline_json_schema(bundle: dict[str, Any]) -> None:
    # The official bundle schema comes from `databricks bundle schema`, which needs the Databricks
    # CLI (not installed here); tests/schemas/ holds the subset lakeboost uses.
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(bundle), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_bundle_has_a_default_dev_target_and_a_prod_target(bundle: dict[str, Any]) -> None:
    targets = bundle["targets"]
    assert targets["dev"]["mode"] == "development" and targets["dev"]["default"] is True
    assert targets["prod"]["mode"] == "production"
    # Production mode refuses to deploy without an explicit root_path (one copy per target).
    assert targets["prod"]["workspace"]["root_path"]
    assert bundle["bundle"]["name"] == "lakeboost"


def test_bundle_builds_the_lakeboost_wheel_the_tasks_install(bundle: dict[str, Any], job: dict[str, Any]) -> None:
    (artifact,) = bundle["artifacts"].values()
    assert artifact["type"] == "whl" and "wheel" in artifact["build"]
    assert (REPO / artifact["path"] / "setup.py").is_file()
    for task in job["tasks"]:
        assert {"whl": "../dist/*.whl"} in task["libraries"], task["task_key"]


def test_job_task_graph_is_the_pipeline_step_order(tasks: dict[str, dict[str, Any]]) -> None:
    graph = {key: [dep["task_key"] for dep in task.get("depends_on", [])] for key, task in tasks.items()}
    expected = {step: ([SCHEDULED_STEPS[i - 1]] if i else []) for i, step in enumerate(SCHEDULED_STEPS)}
    assert graph == expected


def test_every_task_runs_its_job_file_with_the_cluster_overlay(tasks: dict[str, dict[str, Any]]) -> None:
    for key, task in tasks.items():
        python_file = (REPO / "resources" / task["spark_python_task"]["python_file"]).resolve()
        assert python_file == REPO / "jobs" / f"{key}.py" and python_file.is_file(), python_file
        assert task["spark_python_task"]["parameters"][:2] == ["--env", "cluster"], key


def test_task_parameters_are_valid_config_overrides(tasks: dict[str, dict[str, Any]]) -> None:
    params = tasks["ingest"]["spark_python_task"]["parameters"]
    conf_dir = params[params.index("--conf-dir") + 1]
    assert conf_dir == "${workspace.file_path}/conf"
    # Bundle references are resolved at deploy time; any placeholder stands in for them here.
    overrides = [BUNDLE_REF.sub("placeholder", params[i + 1]) for i, flag in enumerate(params) if flag == "--set"]
    config = load_config("cluster", overrides, conf_dir=REPO / "conf", environ={})
    assert config.storage.catalog == "placeholder"
    assert config.training.tracking.tracking_uri == "databricks"


def test_train_retries_more_than_the_other_steps(tasks: dict[str, dict[str, Any]]) -> None:
    train = tasks["train"]
    assert train["max_retries"] >= 1 and train["min_retry_interval_millis"] > 0
    assert all(task["max_retries"] == 1 for key, task in tasks.items() if key != "train")


def test_job_is_scheduled_daily_in_utc(job: dict[str, Any]) -> None:
    assert job["schedule"] == {"quartz_cron_expression": "0 0 3 * * ?", "timezone_id": "UTC"}
    assert job["email_notifications"]["on_failure"] == ["${var.notification_email}"]


def test_job_cluster_disables_dynamic_allocation_and_reads_secrets_from_a_scope(job: dict[str, Any]) -> None:
    (cluster,) = job["job_clusters"]
    new_cluster = cluster["new_cluster"]
    assert new_cluster["spark_conf"]["spark.dynamicAllocation.enabled"] == "false"
    assert new_cluster["num_workers"] == 2
    env = new_cluster["spark_env_vars"]
    assert env["LAKEBOOST_PII_KEY"] == "{{secrets/lakeboost/pii_key}}"
    secrets = {name: value for name, value in env.items() if re.search("KEY|PASSWORD|USER|JDBC_URL", name)}
    assert all(SECRET_REF.match(value) for value in secrets.values()), secrets
    assert {task["job_cluster_key"] for task in job["tasks"]} == {cluster["job_cluster_key"]}


def test_every_bundle_variable_is_defined_and_used(bundle: dict[str, Any]) -> None:
    text = (REPO / "databricks.yml").read_text() + "".join(
        f.read_text() for pattern in bundle["include"] for f in REPO.glob(pattern))
    used = set(re.findall(r"\$\{var\.(\w+)\}", text))
    assert used == set(bundle["variables"])
    for target in bundle["targets"].values():
        assert set(target.get("variables", {})) <= set(bundle["variables"])


# --- cron ---------------------------------------------------------------------------------------

def test_cron_entry_runs_an_existing_script_without_overlap() -> None:
    lines = [line for line in CRON_FILE.read_text().splitlines() if line.strip() and not line.startswith("#")]
    entries = [line for line in lines if not re.match(r"^[A-Z_]+=", line)]
    assert len(entries) == 1
    fields = entries[0].split(None, 5)
    assert fields[:5] == ["0", "3", "*", "*", "*"]
    words = shlex.split(fields[5])
    script = next(word for word in words if word.endswith(".sh"))
    assert (REPO / script).is_file() and (REPO / script).stat().st_mode & 0o111, script
    assert (REPO / words[words.index(script) + 1]).is_file()
    assert "flock" in words and "-n" in words and ">>" in words
    assert "%" not in fields[5], "cron turns % into a newline; escape it as \\%"


# --- Docker -------------------------------------------------------------------------------------

def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    instructions = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, args = line.strip().partition(" ")
            instructions.append((keyword.upper(), args.strip()))
    return instructions


def test_dockerfile_follows_the_hadolint_rules_we_rely_on() -> None:
    instructions = dockerfile_instructions()
    runs = [args for keyword, args in instructions if keyword == "RUN"]
    for run in runs:
        if "apt-get install" in run:
            assert "--no-install-recommends" in run and " -y" in run, run  # DL3015
        if "apt-get update" in run:
            assert "rm -rf /var/lib/apt/lists/*" in run, run  # DL3009
        if "pip install" in run:
            assert "--no-cache-dir" in run, run  # DL3042
    base = next(args for keyword, args in instructions if keyword == "FROM")
    assert ":" in base and not base.endswith(":latest"), base  # DL3006, DL3007
    assert ("SHELL", '["/bin/bash", "-o", "pipefail", "-c"]') in instructions  # DL4006
    user = [args for keyword, args in instructions if keyword == "USER"][-1]
    assert user.split(":")[0] not in {"root", "0"}, user  # DL3002
    assert any(keyword == "WORKDIR" for keyword, _ in instructions)


def test_dockerfile_copies_only_what_exists_and_is_not_dockerignored() -> None:
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    copied = [src for keyword, args in dockerfile_instructions() if keyword == "COPY"
              for src in args.split()[:-1] if not src.startswith("--")]
    assert copied
    for src in copied:
        assert (REPO / src).exists() and src not in ignored, src
    entrypoint = json.loads(next(args for keyword, args in dockerfile_instructions() if keyword == "ENTRYPOINT"))
    assert (REPO / entrypoint[-1]).is_file()


def docker_engine_reachable() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


@pytest.mark.e2e
def test_docker_image_builds_with_jars_resolved_offline() -> None:
    if not docker_engine_reachable():
        pytest.skip("no Docker engine reachable (`docker info` fails): the image is not built here")
    tag = "lakeboost:test"
    subprocess.run(["docker", "build", "-t", tag, str(REPO)], check=True, timeout=3600)
    # No network at run time: the JVM packages must already be in the image.
    result = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "python", tag,
                             "-m", "lakeboost.spark.prefetch"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "delta-spark" in result.stdout
