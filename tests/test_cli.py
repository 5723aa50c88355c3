"""The lakeboost command: generated from the step registry, checks before Spark starts, exit codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from lakeboost.cli import main
from lakeboost.config.schema import json_schema
from lakeboost.errors import ConcurrentWriteError, ConfigError
from lakeboost.logs import StepSummary
from lakeboost.steps import FRAMEWORK_MODULES, StepContext, step
from pyspark.sql import SparkSession

REPO = Path(__file__).resolve().parents[1]
CONF = str(REPO / "conf")
# A master nothing can reach: a command that got as far as starting Spark would fail on it instead.
NO_SPARK = ("--set", "spark.master=spark://nowhere.invalid:1")


def lakeboost(*args: str, entry: tuple[str, ...] = ("-m", "lakeboost")) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_GATEWAY", "LAKEBOOST_CONF_DIR"))}
    return subprocess.run([sys.executable, *entry, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)


def test_help_lists_the_commands_and_examples() -> None:
    done = lakeboost("--help")
    assert done.returncode == 0, done.stderr
    for command in ("config ", "run ", "steps ", "lakeboost run train --replay RUN_ID"):
        assert command in done.stdout


def test_run_help_has_a_command_per_step_and_a_steps_help_its_typed_options_and_requirements() -> None:
    listed = lakeboost("run", "--help").stdout
    assert all(f"  {name} " in listed for name in ["pipeline", *FRAMEWORK_MODULES])
    score = lakeboost("run", "score", "--help")
    assert score.returncode == 0, score.stderr
    assert "--model TEXT" in score.stdout and "[default: champion]" in score.stdout
    assert "--date DATE" in score.stdout and "(repeatable)" in score.stdout
    assert "Requires config: gold.training_set (scoring reads its feature table and as-of joins)" in score.stdout
    assert "--env TEXT" in score.stdout and "--set KEY=VALUE" in score.stdout
    # The spark-submit entry point is the same command.
    assert lakeboost("--help", entry=("jobs/score.py",)).stdout == score.stdout


def test_steps_lists_every_step_with_its_requirements_state_and_options() -> None:
    done = lakeboost("steps", "--conf-dir", CONF, "--set", "scoring.stream=null")
    assert done.returncode == 0, done.stderr
    for name in ("generate  [in the pipeline]", "maintain\n", "train  [in the pipeline]"):
        assert name in done.stdout
    assert "requires scoring.stream [NOT SET]: the live source" in done.stdout
    assert "requires gold.training_set [set]" in done.stdout
    assert "--replay RUN_ID" in done.stdout and "--allow-unsafe-retention" in done.stdout


def test_config_validate_passes_on_the_shipped_config_and_names_the_key_of_a_broken_one() -> None:
    ok = lakeboost("config", "validate", "--conf-dir", CONF)
    assert ok.returncode == 0, ok.stderr
    assert "config valid: env local, pipeline ['generate', 'ingest'," in ok.stdout

    broken = lakeboost("config", "validate", "--conf-dir", CONF, "--set", "training.model.n_estimators=lots")
    assert broken.returncode == ConfigError.exit_code == 2
    assert "--set training.model.n_estimators=lots: training.model.n_estimators: Input should be a valid " \
           "integer" in broken.stderr

    unmet = lakeboost("config", "validate", "--conf-dir", CONF, "--set", "scoring.stream=null",
                      "--set", "pipeline.steps=[ingest, score_stream]")
    assert unmet.returncode == 2
    assert "scoring.stream: step 'score_stream' requires it (the live source, its silver contract and the " \
           "events and predictions tables), and it is not configured" in unmet.stderr


def test_a_missing_requirement_fails_the_run_before_spark_starts() -> None:
    done = lakeboost("run", "score", "--conf-dir", CONF, "--set", "gold.training_set=null", *NO_SPARK)
    assert done.returncode == 2
    assert "score failed: invalid configuration:\n  gold.training_set: step 'score' requires it" in done.stderr
    assert "nowhere.invalid" not in done.stderr  # never got to the session


def test_a_wrong_option_value_is_refused_naming_the_step_and_the_option() -> None:
    done = lakeboost("run", "score", "--conf-dir", CONF, "--date", "2026-13-01", *NO_SPARK)
    assert done.returncode == 2
    assert "step 'score': invalid option(s): --date: Input should be a valid date" in done.stderr
    unknown = lakeboost("run", "score", "--dates", "2026-01-01")
    assert unknown.returncode == 2 and "No such option '--dates'. Did you mean '--date'?" in unknown.stderr


def test_an_unknown_pipeline_step_is_refused_before_spark_starts() -> None:
    done = lakeboost("run", "pipeline", "--conf-dir", CONF, "--only", "clean", *NO_SPARK)
    assert done.returncode == 2
    assert "unknown pipeline step 'clean'" in done.stderr and "nowhere.invalid" not in done.stderr


def test_config_show_prints_the_merged_config_without_secrets() -> None:
    done = lakeboost("config", "show", "--conf-dir", CONF, "--set", "sources.customers.password=PW-CANARY",
                     "--set", "sources.customers.url=jdbc:postgresql://h/db?user=me&password=URL-CANARY")
    assert done.returncode == 0, done.stderr
    assert "PW-CANARY" not in done.stdout and "URL-CANARY" not in done.stdout
    assert "env: local" in done.stdout and "demo:\n  rows:" in done.stdout  # the application's section too
    # The resolved feature columns close it, as comments (the output stays valid YAML of the config).
    assert "# the training set's feature columns (" in done.stdout and "#   customer_count_1h\n" in done.stdout
    assert "#   channel  (categorical)\n" in done.stdout and "#   txn_id\n" not in done.stdout


def test_config_schema_is_the_json_schema_of_the_config() -> None:
    done = lakeboost("config", "schema")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json_schema()


def test_init_writes_the_default_project_the_command_then_runs_from_and_never_overwrites_it(tmp_path: Path) -> None:
    done = lakeboost("init", str(tmp_path / "mine"))
    assert done.returncode == 0, done.stderr
    assert f"lakeboost run pipeline --conf-dir {tmp_path / 'mine' / 'conf'}" in done.stdout
    assert (tmp_path / "mine" / "conf" / "base" / "application.yml").read_text() == (
        REPO / "conf" / "base" / "application.yml").read_text()
    assert (tmp_path / "mine" / "examples" / "card_fraud" / "generator.py").is_file()
    shown = lakeboost("config", "show", "--conf-dir", str(tmp_path / "mine" / "conf"))
    assert f"root: {tmp_path / 'mine' / 'data' / 'lakehouse'}\n" in shown.stdout, shown.stderr
    again = lakeboost("init", str(tmp_path / "mine"))
    assert again.returncode == 2 and "already exists; `lakeboost init` never overwrites a config" in again.stderr


def test_console_entry_point_exits_with_the_commands_code(monkeypatch: pytest.MonkeyPatch) -> None:
    # A Databricks python_wheel_task calls the entry point's function and ignores what it returns:
    # a failure must leave as the process's exit status.
    from lakeboost.cli import console

    monkeypatch.setattr(sys, "argv", ["lakeboost", "config", "show", "--env", "staging", "--conf-dir", CONF])
    with pytest.raises(SystemExit) as exited:
        console()
    assert exited.value.code == 2


@step("test_conflicting_write")
def _conflicting_write(ctx: StepContext) -> StepSummary:
    """A step whose write loses a race."""
    raise ConcurrentWriteError("gold.predictions changed underneath this write")


def test_a_run_keeps_its_summary_in_a_file_and_logs_it_as_json_only_when_asked(
        spark: SparkSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = ("--set", f"storage.root={tmp_path}/lake")
    assert main(["run", "test_counted_write", "--conf-dir", CONF, *root]) == 0
    printed = capsys.readouterr().err.splitlines()
    (kept,) = (tmp_path / "lake" / "_runs").glob("test_counted_write-*.json")
    assert json.loads(kept.read_text())["rows_written"] == 4
    assert not [line for line in printed if "lakeboost.summary" in line]
    # The last lines a person sees: the counts, then where the JSON went.
    assert re.search(r"test_counted_write: 5 rows in, 4 written, 1 quarantined, [\d.]+s$", printed[-2]), printed
    assert printed[-1].endswith(f"summary (JSON): {kept}")
    assert main(["run", "test_counted_write", "--conf-dir", CONF, *root, "--log-json"]) == 0
    logged = [line for line in capsys.readouterr().err.splitlines() if "lakeboost.summary: " in line]
    assert len(logged) == 1 and json.loads(logged[0].split("lakeboost.summary: ", 1)[1])["rows_written"] == 4


def test_a_step_error_exits_with_its_code(spark: SparkSession, caplog: pytest.LogCaptureFixture) -> None:
    assert main(["run", "test_conflicting_write", "--conf-dir", CONF]) == ConcurrentWriteError.exit_code == 13
    assert main(["run", "score", "--nope"]) == 2


@step("test_counted_write")
def _counted_write(ctx: StepContext) -> StepSummary:
    """A step that reports what it wrote."""
    return StepSummary("test_counted_write", rows_read=5, rows_written=4, rows_quarantined=1,
                       versions={"bronze.things": 3}, details={"report": "/reports/x.html"})


def test_summary_json_holds_the_summary_of_a_successful_run(spark: SparkSession, tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    assert main(["run", "test_counted_write", "--conf-dir", CONF, "--summary-json", str(target)]) == 0
    written = json.loads(target.read_text())
    assert written.pop("seconds") >= 0
    assert written == {"step": "test_counted_write", "rows_read": 5, "rows_written": 4, "rows_quarantined": 1,
                       "rows_skipped": 0, "versions": {"bronze.things": 3}, "details": {"report": "/reports/x.html"}}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no partial file left
    # A failed run writes none: a scheduler must not read an old summary as this run's.
    failed = tmp_path / "failed.json"
    assert main(["run", "test_conflicting_write", "--conf-dir", CONF, "--summary-json", str(failed)]) == 13
    assert not failed.exists()
