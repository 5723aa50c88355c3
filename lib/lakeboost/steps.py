"""One registry of named steps, each with one shape: a StepContext in, a StepSummary out.

The framework's steps are registered here (their modules are imported when the step runs,
so a job that ingests does not import xgboost); an application registers its own with
`@step("name")` from a module named in `application.modules`. Steps never import each
other: the pipeline runner (`lakeboost.pipeline`) wires them, including the steps a summary
asks for next (`StepSummary.follow_up`, e.g. retraining after a monitoring alert).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pyspark.sql import SparkSession

from lakeboost.config.model import LakeboostConfig
from lakeboost.errors import ConfigError
from lakeboost.io.catalog import TableCatalog
from lakeboost.logs import StepSummary


@dataclass
class StepContext:
    """What every step gets: the session, the typed config, and the step's own options."""

    spark: SparkSession
    config: LakeboostConfig
    options: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def catalog(self) -> TableCatalog:
        return TableCatalog(self.spark, self.config.storage)


StepFn = Callable[[StepContext], StepSummary]
_STEPS: dict[str, StepFn] = {}
# The framework's steps in pipeline order.
FRAMEWORK_STEPS = ("ingest", "refine", "features", "train", "promote", "score", "score_stream", "monitor")


def step(name: str) -> Callable[[StepFn], StepFn]:
    """Register `fn` as the step `name` (an application's step may not replace a framework one)."""

    def register(fn: StepFn) -> StepFn:
        if name in FRAMEWORK_STEPS and name in _STEPS and _STEPS[name] is not fn:
            raise ConfigError(f"step {name!r} is a framework step; register the application's step under "
                              "another name")
        _STEPS[name] = fn
        return fn

    return register


def get_step(name: str) -> StepFn:
    if name not in _STEPS:
        raise ConfigError(f"unknown step {name!r}; registered steps: {sorted(_STEPS)}")
    return _STEPS[name]


def registered_steps() -> list[str]:
    return list(_STEPS)


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


@step("ingest")
def _ingest(ctx: StepContext) -> StepSummary:
    from lakeboost.ingest.bronze import ingest_sources

    return ingest_sources(ctx.spark, ctx.config, **ctx.options)


@step("refine")
def _refine(ctx: StepContext) -> StepSummary:
    from lakeboost.refine.job import refine_step

    return refine_step(ctx.spark, ctx.config, **ctx.options)


@step("features")
def _features(ctx: StepContext) -> StepSummary:
    from lakeboost.features.job import features_step

    return features_step(ctx.spark, ctx.config, **ctx.options)


@step("train")
def _train(ctx: StepContext) -> StepSummary:
    if ctx.options.get("replay"):
        from lakeboost.train.job import replay_step

        return replay_step(ctx.spark, ctx.config, ctx.options["replay"])
    if ctx.config.training.tune is not None:  # tuning ends with the refit of the best configuration
        from lakeboost.tune.job import tune_step

        return tune_step(ctx.spark, ctx.config)
    from lakeboost.train.job import train_step

    return train_step(ctx.spark, ctx.config)


@step("promote")
def _promote(ctx: StepContext) -> StepSummary:
    from lakeboost.score.promote import promote_step, rollback

    if ctx.options.get("rollback"):
        return rollback(ctx.config, reason=ctx.options.get("reason") or "unspecified")
    return promote_step(ctx.spark, ctx.config)


@step("score")
def _score(ctx: StepContext) -> StepSummary:
    from lakeboost.score.batch import score_step

    return score_step(ctx.spark, ctx.config, **ctx.options)


@step("score_stream")
def _score_stream(ctx: StepContext) -> StepSummary:
    from lakeboost.score.stream import stream_score

    # Catch up on the live events that have landed, then stop (a scheduled run); a long-lived
    # stream is `jobs/score_stream.py --continuous`.
    return stream_score(ctx.spark, ctx.config, **ctx.options)


@step("monitor")
def _monitor(ctx: StepContext) -> StepSummary:
    from lakeboost.monitor.step import monitor_step

    return monitor_step(ctx.spark, ctx.config, **ctx.options)
