"""One registry of named steps, each declared once: its name, its typed options, what it requires.

    @step("score", options=ScoreOptions, requires={"gold.training_set": "scoring reads its feature table"})
    def score(ctx: StepContext[ScoreOptions]) -> StepSummary: ...

A step takes a `StepContext` (session, config, its options, the table catalog) and returns a
`StepSummary`. Its options are a frozen pydantic model whose field descriptions are the help of
`lakeboost run <step>` and the labels of notebook widgets. `requires` names config keys that must
be set; `check_steps` checks them for the steps about to run right after the config loads, before
Spark starts. The framework's steps live in `<package>/step.py`, imported only when a step is
asked for (`FRAMEWORK_MODULES`), so a job that ingests does not import xgboost; an application
registers its own with `@step` from a module named in `application.modules`. Steps never import
each other: the runner (`lakeboost.pipeline`) wires them, including the steps a summary asks for
next (`StepSummary.follow_up`, e.g. retraining after a monitoring alert).
"""

from __future__ import annotations

import importlib
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from lakeboost.config.model import LakeboostConfig
from lakeboost.errors import ConfigError
from lakeboost.logs import StepSummary

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from lakeboost.io.catalog import TableCatalog


class StepOptions(BaseModel):
    """Base of a step's options: frozen, unknown options rejected; field descriptions are the help."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def requirements(self, declared: Mapping[str, str]) -> Mapping[str, str]:
        """The config keys this run needs: what the step declares, unless an option changes that."""
        return declared


def field_kind(field: FieldInfo) -> tuple[Any, bool]:
    """(the value type, repeatable) of an options field: what a command-line option or a widget asks for."""
    annotation, multiple = field.annotation, get_origin(field.annotation) is tuple
    if multiple:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    if get_origin(annotation) is Annotated:  # PositiveFloat and the like
        annotation = get_args(annotation)[0]
    return annotation, multiple


class NoOptions(StepOptions):
    """A step without options."""


Opts = TypeVar("Opts", bound=StepOptions)


@dataclass(frozen=True)
class StepContext(Generic[Opts]):
    """What every step gets: the session, the typed config, its typed options and the table catalog."""

    spark: SparkSession
    config: LakeboostConfig
    options: Opts

    @cached_property
    def catalog(self) -> TableCatalog:
        """Every table the step reads or writes, by logical name (one catalog per step run)."""
        from lakeboost.io.catalog import TableCatalog

        return TableCatalog(self.spark, self.config.storage)


StepFn = Callable[[StepContext[Any]], StepSummary]


@dataclass(frozen=True)
class StepSpec:
    """A registered step: its function, options model, required config keys (key -> why) and help."""

    name: str
    run: StepFn
    options: type[StepOptions]
    requires: Mapping[str, str]
    help: str

    def execute(self, spark: SparkSession, config: LakeboostConfig,
                options: Mapping[str, Any] | StepOptions | None = None) -> StepSummary:
        """Run the step once with its options (no follow-up steps: those are the runner's)."""
        return self.run(StepContext(spark, config, self.parse_options(options)))

    def parse_options(self, values: Mapping[str, Any] | StepOptions | None = None) -> StepOptions:
        """The step's typed options from `values` (field name -> value); ConfigError naming the option."""
        if isinstance(values, self.options):
            return values
        raw = values.model_dump() if isinstance(values, StepOptions) else dict(values or {})
        try:
            return self.options.model_validate(raw)
        except ValidationError as exc:
            problems = [f"--{str(e['loc'][0] if e['loc'] else '?').replace('_', '-')}: {e['msg']}"
                        + ("" if e["type"] in ("missing", "extra_forbidden") else f", found {e.get('input')!r}")
                        for e in exc.errors()]
            known = [f"--{name.replace('_', '-')}" for name in self.options.model_fields] or "none"
            raise ConfigError(f"step {self.name!r}: invalid option(s): " + "; ".join(problems)
                              + f" (its options: {known})") from None


# The framework's steps in pipeline order (the default pipeline; `maintain` runs when configured).
FRAMEWORK_STEPS = ("ingest", "refine", "features", "train", "promote", "score", "score_stream", "monitor")
# Where each framework step is declared: imported on demand, so only the steps a run needs load.
FRAMEWORK_MODULES = {
    "ingest": "lakeboost.ingest.step",
    "refine": "lakeboost.refine.step",
    "features": "lakeboost.features.step",
    "train": "lakeboost.tune.step",
    "promote": "lakeboost.score.step",
    "score": "lakeboost.score.step",
    "score_stream": "lakeboost.score.step",
    "monitor": "lakeboost.monitor.step",
    "maintain": "lakeboost.maintain.step",
}
_STEPS: dict[str, StepSpec] = {}


def step(name: str, *, options: type[StepOptions] = NoOptions,
         requires: Mapping[str, str] | Iterable[str] = ()) -> Callable[[StepFn], StepFn]:
    """Register `fn` as the step `name`, with its options model and the config keys it requires.

    `requires` is a list of dotted config keys, or a mapping key -> why the step needs it (the
    error message says why). An application's step may not replace a framework one.
    """
    needs = dict(requires) if isinstance(requires, Mapping) else {key: "" for key in requires}

    def register(fn: StepFn) -> StepFn:
        home = FRAMEWORK_MODULES.get(name)
        if home is not None and fn.__module__ != home:
            raise ConfigError(f"step {name!r} is a framework step; register the application's step under "
                              "another name")
        _STEPS[name] = StepSpec(name, fn, options, needs, (fn.__doc__ or "").strip().split("\n\n")[0])
        return fn

    return register


def get_step(name: str) -> StepSpec:
    """The declaration of step `name` (a framework step's module is imported on first use)."""
    if name not in _STEPS and name in FRAMEWORK_MODULES:
        importlib.import_module(FRAMEWORK_MODULES[name])
    if name not in _STEPS:
        raise ConfigError(f"unknown step {name!r}; registered steps: {registered_steps()} "
                          "(an application's steps come from application.modules)")
    return _STEPS[name]


def registered_steps() -> list[str]:
    """Every step name: the framework's (declared or not yet imported) and the applications'."""
    return list(dict.fromkeys([*FRAMEWORK_MODULES, *_STEPS]))


def configured_steps(config: LakeboostConfig) -> list[str]:
    """`pipeline.steps`, or the framework steps the config enables."""
    if config.pipeline.steps is not None:
        return list(config.pipeline.steps)
    enabled = ["ingest", "refine"]
    if config.dataset is not None and config.gold.features:
        enabled.append("features")
    if config.dataset is not None and config.gold.training_set is not None:
        enabled += ["train", "promote", "score"]
        if config.scoring.stream is not None:
            enabled.append("score_stream")
        enabled.append("monitor")
    return enabled


def check_steps(config: LakeboostConfig, names: Iterable[str] | None = None,
                options: Mapping[str, StepOptions] | None = None) -> list[StepSpec]:
    """Check that the steps (default: the configured pipeline) exist and their config keys are set.

    Called right after the config loads, before Spark starts, so a step that cannot run fails
    the run before any step has.

    Raises:
        ConfigError: an unknown step name, or a required key that is not set (all problems at once).
    """
    where = "pipeline.steps" if names is None and config.pipeline.steps is not None else "step"
    specs, problems = [], []
    for name in configured_steps(config) if names is None else names:
        try:
            spec = get_step(name)
        except ConfigError:
            problems.append(f"{where}: unknown step {name!r}; registered steps: {registered_steps()} "
                            "(an application's steps come from application.modules)")
            continue
        specs.append(spec)
        chosen = (options or {}).get(name) or spec.options()
        for key, why in chosen.requirements(spec.requires).items():
            if not is_configured(config, key):
                because = f" ({why})" if why else ""
                problems.append(f"{key}: step {name!r} requires it{because}, and it is not configured; "
                                f"set {key} or leave {name!r} out of the run")
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))
    return specs


def is_configured(config: LakeboostConfig, key: str) -> bool:
    """Whether the dotted config key is set (not None, not empty); an application's section counts."""
    first, *rest = key.split(".")
    value: Any = config.sections.get(first) if first in config.sections else getattr(config, first, None)
    for part in rest:
        value = value.get(part) if isinstance(value, Mapping) else getattr(value, part, None)
    return value is not None and value != {} and value != ()
