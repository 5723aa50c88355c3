"""The step registry: declarations, typed options, required config keys checked before any step runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from lakeboost.config import load_config
from lakeboost.errors import ConfigError
from lakeboost.logs import StepSummary
from lakeboost.pipeline import run_pipeline, run_step
from lakeboost.steps import (
    FRAMEWORK_MODULES,
    FRAMEWORK_STEPS,
    StepContext,
    StepOptions,
    check_steps,
    configured_steps,
    get_step,
    step,
)
from pydantic import Field

REPO = Path(__file__).resolve().parents[1]
REPO_CONF = REPO / "conf"


def demo(*overrides: str):
    return load_config("local", list(overrides), conf_dir=REPO_CONF, environ={})


def test_every_framework_step_is_declared_in_its_packages_step_module() -> None:
    for name, module in FRAMEWORK_MODULES.items():
        spec = get_step(name)
        assert spec.run.__module__ == module and module.endswith(".step")
        assert spec.help, f"step {name} has no help text"
        for field in spec.options.model_fields.values():
            assert field.description, f"an option of {name} has no description"
    assert set(FRAMEWORK_STEPS) < set(FRAMEWORK_MODULES)  # maintain is a step, not in the default pipeline
    assert "maintain" not in configured_steps(demo())


def test_a_job_that_ingests_does_not_import_xgboost_or_mlflow() -> None:
    code = ("import sys; from lakeboost.steps import get_step, registered_steps; get_step('ingest'); "
            "get_step('refine'); print(sorted(m for m in ('xgboost', 'mlflow') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_typed_options_are_parsed_and_a_wrong_value_is_refused_naming_the_option() -> None:
    score = get_step("score")
    parsed = score.parse_options({"model": "3", "date": ["2026-01-01", "2026-01-02"]})
    assert parsed.model == "3" and [d.isoformat() for d in parsed.date] == ["2026-01-01", "2026-01-02"]
    with pytest.raises(ConfigError, match=r"step 'score': invalid option\(s\): --date: Input should be a valid "
                                          r"date.*found '2026-13-01'"):
        score.parse_options({"date": ["2026-13-01"]})
    with pytest.raises(ConfigError, match=r"step 'monitor': invalid option\(s\): --as-off: Extra inputs are not "
                                          r"permitted \(its options: \['--as-of'\]\)"):
        get_step("monitor").parse_options({"as_off": "2026-01-01"})
    with pytest.raises(ConfigError, match=r"--timeout: Input should be greater than 0, found -1"):
        get_step("ingest").parse_options({"timeout": -1})


def test_a_missing_requirement_names_the_key_the_step_and_why_before_any_step_runs() -> None:
    config = demo("gold.training_set=null", "pipeline.steps=[ingest, refine, score, monitor]")
    with pytest.raises(ConfigError) as raised:
        check_steps(config)
    message = str(raised.value)
    assert "gold.training_set: step 'score' requires it (scoring reads its feature table and as-of joins), " \
           "and it is not configured" in message
    assert "gold.training_set: step 'monitor' requires it" in message
    # The runner checks before the first step: a session that is never used is enough to prove it.
    with pytest.raises(ConfigError, match="step 'score' requires it"):
        run_pipeline(None, config, ["ingest", "score"])  # type: ignore[arg-type]


def test_an_option_can_lift_a_requirement() -> None:
    config = demo("gold.training_set=null", "pipeline.steps=[ingest, promote]")
    promote = get_step("promote")
    with pytest.raises(ConfigError, match="step 'promote' requires it"):
        check_steps(config, ["promote"])
    check_steps(config, ["promote"], {"promote": promote.parse_options({"rollback": True})})


def test_an_unknown_pipeline_step_is_named_with_the_registered_ones() -> None:
    config = demo("pipeline.steps=[ingest, clean]")
    with pytest.raises(ConfigError, match=r"pipeline.steps: unknown step 'clean'; registered steps: \['ingest', "):
        check_steps(config)
    check_steps(demo())  # the shipped demo's pipeline, generate included


class EchoOptions(StepOptions):
    times: int = Field(1, ge=1, description="how many times")


@step("test_echo", options=EchoOptions, requires=("sections.nowhere",))
def _echo(ctx: StepContext[EchoOptions]) -> StepSummary:
    """A test step."""
    return StepSummary("test_echo", rows_read=ctx.options.times)


def test_an_application_step_declares_options_and_requirements_like_a_framework_step() -> None:
    with pytest.raises(ConfigError, match="sections.nowhere: step 'test_echo' requires it"):
        run_step(None, demo(), "test_echo", times=2)  # type: ignore[arg-type]
    assert get_step("test_echo").execute(None, demo(), {"times": 3}).rows_read == 3  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="framework step"):
        step("score")(_echo)
