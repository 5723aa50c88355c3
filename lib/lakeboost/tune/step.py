"""The train step: a fit on the gold training set, tuned first when `training.tune` is set, or a replay.

It lives in the tune package because it chooses between training and tuning: tuning is the
package above training (it calls the fit and the refit), and training never imports tuning.
"""

from __future__ import annotations

from pydantic import Field

from lakeboost.logs import StepSummary
from lakeboost.steps import StepContext, StepOptions, step


class TrainOptions(StepOptions):
    replay: str | None = Field(None, description="rebuild the run's training set by time travel and retrain "
                                                 "(no registration)", json_schema_extra={"metavar": "RUN_ID"})


@step("train", options=TrainOptions, requires={"gold.training_set": "the model trains on it",
                                               "dataset": "the training set is built over dataset.events"})
def train(ctx: StepContext[TrainOptions]) -> StepSummary:
    """Train the model on the gold training set (xgboost.spark), track it in MLflow, register it."""
    if ctx.options.replay:
        from lakeboost.train.job import replay_step

        return replay_step(ctx.catalog, ctx.config, ctx.options.replay)
    if ctx.config.training.tune is not None:  # tuning ends with the refit of the best configuration
        from lakeboost.tune.job import tune_step

        return tune_step(ctx.catalog, ctx.config)
    from lakeboost.train.job import train_step

    return train_step(ctx.catalog, ctx.config)
