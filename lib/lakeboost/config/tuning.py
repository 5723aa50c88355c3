"""Hyperparameter tuning configuration: search space, algorithm, strategy and budgets."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from lakeboost.config.base import Frozen


class SearchParam(Frozen):
    """One dimension: uniform/loguniform over [low, high], quniform with step q, or choice."""

    kind: Literal["uniform", "loguniform", "quniform", "choice"]
    low: float | None = None
    high: float | None = None
    q: float | None = None
    options: tuple[Any, ...] = ()

    @model_validator(mode="after")
    def _shape(self) -> SearchParam:
        if self.kind == "choice":
            if not self.options:
                raise ValueError("kind: choice needs options")
        elif self.low is None or self.high is None or self.low >= self.high:
            raise ValueError(f"kind: {self.kind} needs low < high")
        if self.kind == "loguniform" and (self.low or 0) <= 0:
            raise ValueError("kind: loguniform needs low > 0")
        if self.kind == "quniform" and not self.q:
            raise ValueError("kind: quniform needs q (the step)")
        return self


DEFAULT_SPACE: dict[str, dict[str, Any]] = {
    "max_depth": {"kind": "quniform", "low": 3, "high": 10, "q": 1},
    "learning_rate": {"kind": "loguniform", "low": 0.01, "high": 0.3},
    "min_child_weight": {"kind": "loguniform", "low": 0.5, "high": 50},
    "subsample": {"kind": "uniform", "low": 0.5, "high": 1.0},
    "colsample_bytree": {"kind": "uniform", "low": 0.4, "high": 1.0},
    "reg_lambda": {"kind": "loguniform", "low": 0.01, "high": 20},
    "reg_alpha": {"kind": "loguniform", "low": 0.001, "high": 5},
    "max_bin": {"kind": "choice", "options": [64, 128, 256]},
}


class TuneConfig(Frozen):
    # hyperopt: batches of k proposals (TPE, random, annealing); optuna: a persisted study
    # (multivariate TPE or random) whose losing distributed trials are pruned per boosting round.
    backend: Literal["hyperopt", "optuna"] = "hyperopt"
    algo: Literal["tpe", "random", "anneal"] = "tpe"
    seed: int = 11
    # algo tpe: how many trials are drawn at random before TPE's model proposes (both backends draw
    # them from the seed, as random search would). Default: the sampler's own, Optuna 10, Hyperopt 20
    # (with Hyperopt a budget of 20 or fewer trials is then random search). Ignored by random.
    startup_trials: int | None = Field(None, ge=1)
    space: dict[str, SearchParam] = Field(default_factory=lambda: {
        k: SearchParam.model_validate(v) for k, v in DEFAULT_SPACE.items()})
    # The validation metric to maximise (PR AUC suits imbalanced binary problems).
    metric: str | None = None  # default: the objective's (lakeboost.config.metrics)
    strategy: Literal["auto", "single_node", "distributed"] = "auto"
    # auto: single-node trials while the training matrix stays under this many MiB.
    single_node_max_mb: float = Field(512, gt=0)
    # Concurrent trials; default: what the free task slots allow.
    parallelism: int | None = Field(None, ge=1)
    # Budgets: whichever is reached first ends the search, keeping the best so far.
    max_evals: int = Field(24, ge=1)
    timeout_seconds: float | None = Field(1800, gt=0)
    no_improvement_trials: int | None = Field(8, ge=1)
    # Rounds per trial are bounded by early stopping on validation.
    trial_n_estimators: int = Field(300, ge=1)
    # After the search: refit on train with validation early stopping, or on train+validation
    # with the early-stopped rounds scaled by the extra data.
    refit: Literal["train_early_stopping", "train_valid"] = "train_early_stopping"
    # Optuna only. pruner: stop a distributed trial whose per-round validation curve falls behind
    # (median: below the median of earlier trials at the same round; successive_halving: not in
    # the top third at its rung) by cancelling its Spark jobs; none: every trial runs to its end.
    pruner: Literal["none", "median", "successive_halving"] = "median"
    # Rounds before a trial can be pruned (median: n_warmup_steps; successive_halving: min_resource).
    prune_after_rounds: int = Field(5, ge=1)
    # median: trials that finish before any is pruned.
    prune_startup_trials: int = Field(3, ge=0)
    # The study's name (resumed when its journal holds it); default: derived from the search's
    # configuration and the training set's table versions.
    study: str | None = None
    # Where the study's journal file lives; default: <storage.root>/tune.
    study_dir: str | None = None
    # Where rank 0 of each distributed trial appends its per-round validation metric for the
    # driver to read: a local path both the driver and the executors reach (on a cluster:
    # /dbfs/..., /Volumes/..., NFS). Default on a local master: <study_dir>/curves.
    progress_dir: str | None = None

    @model_validator(mode="after")
    def _backend(self) -> TuneConfig:
        if self.backend == "optuna" and self.algo == "anneal":
            raise ValueError("training.tune.algo: anneal has no Optuna sampler; with backend: optuna use "
                             "tpe (multivariate TPE) or random")
        return self
