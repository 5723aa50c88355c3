"""The serving steps: batch scoring, stream scoring, and promotion (or rollback) of the champion."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from pydantic import Field, PositiveFloat

from lakeboost.errors import ConfigError
from lakeboost.logs import StepSummary
from lakeboost.steps import StepContext, StepOptions, step


class ScoreOptions(StepOptions):
    model: str = Field("champion", description="alias or version number of the registered model")
    date: tuple[dt.date, ...] = Field((), description="date partition (dataset.date_column) to score "
                                                      "(repeatable); default: scoring.dates (the latest)")
    since: dt.date | None = Field(None, description="score every date partition from this one on (with --until: "
                                                    "a range, both inclusive)", json_schema_extra={"metavar": "DATE"})
    until: dt.date | None = Field(None, description="score every date partition up to this one",
                                  json_schema_extra={"metavar": "DATE"})


class StreamScoreOptions(StepOptions):
    continuous: bool = Field(False, description="keep running, one micro-batch per scoring.stream.interval "
                                                "(default: score what has arrived, then stop)")
    timeout: PositiveFloat | None = Field(None, description="with --continuous: stop after this many seconds",
                                          json_schema_extra={"metavar": "SECONDS"})


class PromoteOptions(StepOptions):
    rollback: bool = Field(False, description="move champion back to the previous champion")
    reason: str = Field("", description="why (recorded with the rollback)")

    def requirements(self, declared: Mapping[str, str]) -> Mapping[str, str]:
        return {} if self.rollback else declared  # a rollback moves an alias: no snapshot to compare on


@step("promote", options=PromoteOptions,
      requires={"gold.training_set": "the challenger and the champion are compared on its snapshot"})
def promote(ctx: StepContext[PromoteOptions]) -> StepSummary:
    """Promote the challenger to champion if it wins on a pinned snapshot, or roll the champion back."""
    from lakeboost.score.promote import promote_step, rollback

    if ctx.options.rollback:
        return rollback(ctx.config, reason=ctx.options.reason or "unspecified")
    return promote_step(ctx.catalog, ctx.config)


@step("score", options=ScoreOptions,
      requires={"gold.training_set": "scoring reads its feature table and as-of joins"})
def score(ctx: StepContext[ScoreOptions]) -> StepSummary:
    """Score gold features with a registered model (default: the champion) into the predictions table."""
    from lakeboost.score.batch import score_step

    options = ctx.options
    if options.date and (options.since or options.until):
        raise ConfigError("score: give --date, or --since/--until, not both")
    dates = [d.isoformat() for d in options.date] or None
    return score_step(ctx.catalog, ctx.config, ref=options.model, dates=dates, since=options.since,
                      until=options.until)


@step("score_stream", options=StreamScoreOptions,
      requires={"scoring.stream": "the live source, its silver contract and the events and predictions tables",
                "gold.training_set": "stream scoring uses its as-of joins"})
def score_stream(ctx: StepContext[StreamScoreOptions]) -> StepSummary:
    """Score live events (bronze stream) with the champion as they arrive; exactly once per event."""
    from lakeboost.score.stream import stream_score

    # Catch up on the live events that have landed, then stop (a scheduled run); a long-lived
    # stream is `lakeboost run score_stream --continuous`.
    return stream_score(ctx.catalog, ctx.config, continuous=ctx.options.continuous,
                        timeout_seconds=ctx.options.timeout)
