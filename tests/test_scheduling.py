"""Scheduled runs and containers: the bundle, the crontab and the Dockerfile (Airflow: tests/scheduling/).

Fast and Spark-free: files are parsed, not deployed. The image is built only when a Docker engine
is reachable.
"""

from __future__ import annotations

import ast
import copy
import importlib
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from lakeboost.config import load_config
from lakeboost.steps import FRAMEWORK_STEPS
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
# Databricks Runtime -> Spark, from Databricks' release notes (the file names its source).
RUNTIMES = Path(__file__).parent / "schemas" / "databricks_runtimes.yml"
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

def bundle_models() -> dict[str, Any]:
    """Databricks' own typed models of the bundle's resource kinds (the `databricks-bundles` package,
    generated from the Jobs API by Databricks): `from_dict` refuses an unknown field, a wrong enum value
    (a health metric, an access mode) and a value of the wrong type, naming the field and the class."""
    pytest.importorskip("databricks.bundles", reason="databricks-bundles (the test extra) is not installed")
    from databricks.bundles.experiments import MlflowExperiment
    from databricks.bundles.jobs import Job

    return {"jobs": Job, "experiments": MlflowExperiment}


def test_every_bundle_resource_is_valid_for_databricks_own_models() -> None:
    models = bundle_models()
    bundle = yaml.safe_load((REPO / "databricks.yml").read_text())
    checked = []
    for pattern in bundle["include"]:
        for file in sorted(REPO.glob(pattern)):
            for kind, items in (yaml.safe_load(file.read_text()).get("resources") or {}).items():
                assert kind in models, f"{file.name}: resources.{kind}: no model for this kind here; add it"
                for name, resource in items.items():
                    try:
                        built = models[kind].from_dict(copy.deepcopy(resource))
                    except (ValueError, TypeError) as exc:
                        pytest.fail(f"{file.name}: resources.{kind}.{name}: {exc}")
                    # Nothing dropped or coerced on the way: the model gives back what the file says.
                    assert built.as_dict() == resource, f"{file.name}: resources.{kind}.{name}"
                    checked.append(f"{kind}.{name}")
    assert checked == ["experiments.lakeboost_experiment", "jobs.lakeboost_pipeline"]


@pytest.mark.parametrize(("path", "value", "message"), [
    (("timeout_second",), 60, "Unexpected field 'timeout_second' for class Job"),
    (("tasks", 0, "health", "rules", 0, "metric"), "RUN_DURATION", "'RUN_DURATION' is not a valid JobsHealthMetric"),
    (("tasks", 0, "python_wheel_task", "entrypoint"), "lakeboost", "Unexpected field 'entrypoint' for class "
                                                                    "PythonWheelTask"),
    (("job_clusters", 0, "new_cluster", "data_security_mode"), "SHARED_USER", "is not a valid DataSecurityMode"),
])
def test_databricks_models_refuse_a_misspelt_field_or_a_wrong_value(
        job: dict[str, Any], path: tuple[Any, ...], value: Any, message: str) -> None:
    broken = copy.deepcopy(job)
    cursor: Any = broken
    for part in path[:-1]:
        cursor = cursor[part]
    cursor[path[-1]] = value
    with pytest.raises(ValueError, match=re.escape(message)):
        bundle_models()["jobs"].from_dict(broken)


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


def test_every_task_runs_its_step_through_the_wheels_entry_point_with_the_cluster_overlay(
        tasks: dict[str, dict[str, Any]]) -> None:
    # The console script the wheel declares (setup.py) is what python_wheel_task's entry_point names.
    scripts = re.search(r'"console_scripts": \["lakeboost=([\w.]+):(\w+)"\]', (REPO / "setup.py").read_text())
    assert scripts, "setup.py declares no `lakeboost` console script"
    assert callable(getattr(importlib.import_module(scripts[1]), scripts[2]))
    for key, task in tasks.items():
        assert "spark_python_task" not in task, key
        wheel_task = task["python_wheel_task"]
        assert (wheel_task["package_name"], wheel_task["entry_point"]) == ("lakeboost", "lakeboost"), key
        assert wheel_task["parameters"][:4] == ["run", key, "--env", "cluster"], key
        # The packed config is the one they run with: no --conf-dir into synced workspace files.
        assert "--conf-dir" not in wheel_task["parameters"], key


def test_task_parameters_are_a_valid_command_and_config_overrides(tasks: dict[str, dict[str, Any]]) -> None:
    from lakeboost.cli import cli

    for key, task in tasks.items():
        # Bundle references are resolved at deploy time; any placeholder stands in for them here.
        params = [BUNDLE_REF.sub("placeholder", p) for p in task["python_wheel_task"]["parameters"]]
        command = cli.get_command(click.Context(cli), params[0]).get_command(click.Context(cli), params[1])
        assert command is not None, key
        values = command.make_context(key, params[2:]).params  # click parses them as `lakeboost run <step>` would
        assert values["env"] == "cluster" and values["conf_dir"] is None, key
        config = load_config("cluster", values["overrides"], environ={})
        assert config.storage.catalog == "placeholder", key
        assert config.training.tracking.tracking_uri == "databricks", key


def test_every_task_and_the_job_are_bounded_in_time_and_warn_before(job: dict[str, Any],
                                                                      tasks: dict[str, dict[str, Any]]) -> None:
    def duration_warning(unit: dict[str, Any]) -> int:
        (rule,) = unit["health"]["rules"]
        assert (rule["metric"], rule["op"]) == ("RUN_DURATION_SECONDS", "GREATER_THAN")
        return int(rule["value"])

    for key, task in tasks.items():
        assert 0 < duration_warning(task) < task["timeout_seconds"], key
        assert task["email_notifications"]["on_duration_warning_threshold_exceeded"] == ["${var.notification_email}"]
    # The job outlasts train's attempts (each bounded by its timeout), so train's retries can run.
    train = tasks["train"]
    assert job["timeout_seconds"] >= train["timeout_seconds"] * (1 + train["max_retries"])
    assert train["retry_on_timeout"] is True
    assert 0 < duration_warning(job) < job["timeout_seconds"]
    assert job["email_notifications"]["on_duration_warning_threshold_exceeded"] == ["${var.notification_email}"]


def spark_of_runtime(spark_version: str) -> str:
    """The Apache Spark version a cluster spark_version key ships (tests/schemas/databricks_runtimes.yml)."""
    runtimes = yaml.safe_load(RUNTIMES.read_text())["runtimes"]
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(?:\.x)?-(?:cpu-ml-|gpu-ml-)?(?:photon-)?scala2\.1[23]", spark_version)
    assert match, f"{spark_version!r} is not a Databricks Runtime key like '19.x-scala2.13'"
    assert match[1] in runtimes, f"runtime {match[1]} is not in {RUNTIMES.name}; add it from the release notes"
    return str(runtimes[match[1]]["spark"])


def pyspark_pin() -> SpecifierSet:
    tree = ast.parse((REPO / "setup.py").read_text())
    (spark_requires,) = [node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
                         and any(isinstance(t, ast.Name) and t.id == "SPARK_REQUIRES" for t in node.targets)]
    (pin,) = [Requirement(r).specifier for r in ast.literal_eval(spark_requires) if Requirement(r).name == "pyspark"]
    return pin


@pytest.mark.parametrize(("spark_version", "spark"), [
    ("19.x-scala2.13", "4.2.0"), ("18.2.x-scala2.13", "4.1.0"), ("17.3.x-scala2.13", "4.0.0"),
    ("16.4.x-scala2.12", "3.5.2"), ("17.3.x-cpu-ml-scala2.13", "4.0.0")])
def test_runtime_table_maps_cluster_keys_to_their_spark(spark_version: str, spark: str) -> None:
    assert spark_of_runtime(spark_version) == spark


def test_bundle_runtime_ships_the_spark_minor_pyspark_is_pinned_to(bundle: dict[str, Any]) -> None:
    pin = pyspark_pin()
    assert "4.2.0" in pin and "4.3.0" not in pin  # what the table below is checked against
    chosen = {"default": bundle["variables"]["spark_version"]["default"]}
    chosen |= {target: spec["variables"]["spark_version"] for target, spec in bundle["targets"].items()
               if "spark_version" in spec.get("variables", {})}
    for where, spark_version in chosen.items():
        spark = spark_of_runtime(spark_version)
        assert Version(spark) in pin, (f"{where}: spark_version {spark_version} ships Spark {spark}, "
                                       f"but setup.py pins pyspark{pin}")
    # The old default, Databricks Runtime 17.3 LTS, ships Spark 4.0: the check refuses it.
    assert Version(spark_of_runtime("17.3.x-scala2.13")) not in pin


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
