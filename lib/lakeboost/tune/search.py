"""A batched hyperopt search with budgets.

hyperopt's `fmin` evaluates one trial at a time (or hands trials to SparkTrials, which runs
each as a single Spark task and so cannot host a distributed fit). lakeboost drives hyperopt's
own suggestion algorithms (TPE, random, annealing) in batches instead: ask for `k` points,
evaluate them together with a strategy-specific evaluator (k Spark tasks, or k driver threads
each running a distributed fit), tell hyperopt the results, repeat. The seed makes the
sequence of proposals reproducible for the same results.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hyperopt import JOB_STATE_DONE, STATUS_FAIL, STATUS_OK, Trials, anneal, base, rand, space_eval, tpe

from lakeboost.tune.space import to_xgboost_params

log = logging.getLogger(__name__)
ALGORITHMS = {"tpe": tpe.suggest, "random": rand.suggest, "anneal": anneal.suggest}


@dataclass(frozen=True)
class TrialOutcome:
    """What an evaluator reports for one configuration (the metric's value, in its own direction)."""

    metric: float | None
    rounds: int = 0
    seconds: float = 0.0
    error: str | None = None
    pruned_at: int | None = None  # the boosting round after which the pruner stopped it (optuna backend)


@dataclass
class SearchResult:
    trials: list[dict[str, Any]] = field(default_factory=list)  # params, metric, rounds, seconds (, cost)
    stop_reason: str = ""
    seconds: float = 0.0
    cost: float | None = None  # estimated cost of the whole search, set by a caller that measured it
    higher_is_better: bool = True  # the metric's direction (RMSE, log loss: lower is better)

    def _gain(self, value: float) -> float:
        return value if self.higher_is_better else -value

    @property
    def best(self) -> dict[str, Any] | None:
        scored = [t for t in self.trials if t["metric"] is not None and not math.isnan(t["metric"])]
        return max(scored, key=lambda t: self._gain(t["metric"])) if scored else None

    def best_so_far(self) -> list[float]:
        curve: list[float] = []
        best: float | None = None
        for trial in self.trials:
            value = trial["metric"]
            if value is not None and not math.isnan(value) and (best is None or self._gain(value) > self._gain(best)):
                best = value
            curve.append(float("nan") if best is None else best)
        return curve


Evaluator = Callable[[Sequence[dict[str, Any]]], list[TrialOutcome]]


def run_search(evaluate: Evaluator, space: dict[str, Any], *, algo: str, seed: int, batch_size: int,
               max_evals: int, timeout_seconds: float | None = None, no_improvement_trials: int | None = None,
               on_trial: Callable[[dict[str, Any]], None] | None = None,
               higher_is_better: bool = True, clock: Callable[[], float] = time.monotonic,
               startup_trials: int | None = None) -> SearchResult:
    """Search until a budget is spent; the best trial so far is always kept. Hyperopt minimises
    a loss: the metric, or its negative when higher is better.

    The budgets are checked between batches (a started batch finishes); `clock` (seconds) is what
    the timeout is measured with. `startup_trials`: TPE's random start-up trials (hyperopt's
    n_startup_jobs; None: its default, 20).
    """
    trials, domain = Trials(), base.Domain(lambda _: 0.0, space)
    rng = np.random.default_rng(seed)
    suggest = ALGORITHMS[algo]
    if algo == "tpe" and startup_trials is not None:
        suggest = functools.partial(tpe.suggest, n_startup_jobs=startup_trials)
    result, started = SearchResult(higher_is_better=higher_is_better), clock()
    while True:
        reason = _budget_spent(result, clock() - started, max_evals, timeout_seconds, no_improvement_trials)
        if reason:
            result.stop_reason = reason
            break
        size = min(batch_size, max_evals - len(result.trials))
        ids = trials.new_trial_ids(size)
        trials.refresh()
        docs = suggest(ids, domain, trials, int(rng.integers(2**31 - 1)))
        trials.insert_trial_docs(docs)
        trials.refresh()
        batch = [to_xgboost_params(space_eval(space, _values(doc))) for doc in docs]
        outcomes = evaluate(batch)
        for doc, params, outcome in zip(docs, batch, outcomes, strict=True):
            _tell(doc, outcome, higher_is_better=higher_is_better)
            record = {"params": params, "metric": outcome.metric, "rounds": outcome.rounds,
                      "seconds": outcome.seconds, "error": outcome.error, "trial": len(result.trials)}
            result.trials.append(record)
            if on_trial:
                on_trial(record)
        trials.refresh()
    result.seconds = clock() - started
    log.info("search stopped (%s) after %d trials in %.1fs; best %s", result.stop_reason, len(result.trials),
             result.seconds, result.best and result.best["metric"])
    return result


def _values(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v[0] for k, v in doc["misc"]["vals"].items() if v}


def _tell(doc: dict[str, Any], outcome: TrialOutcome, *, higher_is_better: bool) -> None:
    doc["state"] = JOB_STATE_DONE
    if outcome.metric is None or math.isnan(outcome.metric):
        doc["result"] = {"status": STATUS_FAIL, "error": outcome.error}
    else:
        doc["result"] = {"status": STATUS_OK, "loss": -outcome.metric if higher_is_better else outcome.metric}


def _budget_spent(result: SearchResult, elapsed: float, max_evals: int, timeout_seconds: float | None,
                  no_improvement_trials: int | None) -> str:
    if len(result.trials) >= max_evals:
        return f"max_evals={max_evals} reached"
    if timeout_seconds is not None and elapsed >= timeout_seconds:
        return f"timeout of {timeout_seconds:.0f}s reached"
    if no_improvement_trials and result.best is not None:
        since_best = len(result.trials) - 1 - result.best["trial"]
        if since_best >= no_improvement_trials:
            return f"no improvement in {since_best} trials"
    return ""
