"""Optuna as the tuning backend (training.tune.backend: optuna): a persisted study, asked and told
from k driver threads, whose trials can be pruned while they run.

Unlike the hyperopt backend's batches (search.py: k proposals, wait for all k, tell), each of the
k threads asks for one configuration, runs it and tells the result, so a trial that ends early
(pruned, failed) hands its task slots to the next trial at once. k is the strategy's parallelism
(job.choose_strategy: k x num_workers <= free slots for distributed trials), so concurrent trials
never ask for more barrier slots than are free.

The sampler is Optuna's TPE with `multivariate=True` (one Parzen estimator over all dimensions,
not one per dimension as hyperopt's) and `constant_liar` (running trials count as bad, so
concurrent threads do not propose the same point), or its random sampler. The study lives in an
Optuna JournalStorage file (`<study_dir>/<study>.journal`): a driver that restarts with the same
study finds its finished trials there and runs only what is left of max_evals. Trials that were
running when the previous driver died are marked failed and not counted (one driver per study).

Pruning is per boosting round: a trial runner reports its validation metric after each round
through `TrialControl.report`, which tells Optuna and answers whether the pruner (median or
successive halving) stops the trial; the runner then stops its fit (pruning.py: by cancelling the
trial's Spark jobs).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from lakeboost.config.tuning import SearchParam, TuneConfig
from lakeboost.errors import ConfigError
from lakeboost.tune.search import SearchResult, TrialOutcome
from lakeboost.tune.space import INTEGER_PARAMS

log = logging.getLogger(__name__)
optuna.logging.set_verbosity(optuna.logging.WARNING)  # a line per trial is lakeboost's progress line
INTERRUPTED = "interrupted"  # user attribute of a trial the previous driver left running


def optuna_space(space: dict[str, SearchParam]) -> dict[str, BaseDistribution]:
    """The same search space as hyperopt_space, as Optuna distributions; what Optuna cannot express
    exactly is refused, naming the dimension."""
    return {name: _distribution(name, param) for name, param in space.items()}


def _distribution(name: str, param: SearchParam) -> BaseDistribution:
    where = f"training.tune.space.{name}"
    if param.kind == "choice":
        bad = [o for o in param.options if o is not None and not isinstance(o, (bool, int, float, str))]
        if bad:
            raise ConfigError(f"{where}: Optuna's choices must be numbers, strings, booleans or null; found "
                              f"{bad[0]!r}. Use backend: hyperopt for nested choices, or list plain values")
        return CategoricalDistribution(list(param.options))
    low, high = param.low, param.high
    assert low is not None and high is not None  # SearchParam's validator
    if param.kind == "uniform":
        return FloatDistribution(low, high)
    if param.kind == "loguniform":
        return FloatDistribution(low, high, log=True)
    q = param.q
    assert q is not None
    steps = (high - low) / q
    if abs(steps - round(steps)) > 1e-9:
        raise ConfigError(f"{where}: quniform from {low:g} to {high:g} in steps of {q:g} does not end on a step "
                          f"((high - low) / q = {steps:g}); Optuna's stepped ranges must. Set high to "
                          f"{low + math.floor(steps) * q:g} or {low + math.ceil(steps) * q:g}")
    integral = all(float(v).is_integer() for v in (low, high, q))
    if name in INTEGER_PARAMS and not integral:
        raise ConfigError(f"{where}: an integer parameter needs whole low, high and q; found {low:g}, {high:g}, {q:g}")
    if integral:
        return IntDistribution(int(low), int(high), step=int(q))
    return FloatDistribution(low, high, step=q)


def study_name(tune: TuneConfig, *, prefix: str, objective: str, metric: str, data: dict[str, Any]) -> str:
    """tune.study, or a name keyed on what makes two searches the same search: the space, the
    sampler and its seed, the pruner, the metric, the objective and the training data's versions.
    Budgets are left out: raising max_evals resumes the study."""
    if tune.study:
        return tune.study
    key = {"space": {k: v.model_dump() for k, v in sorted(tune.space.items())}, "algo": tune.algo,
           "seed": tune.seed, "pruner": tune.pruner, "prune_after_rounds": tune.prune_after_rounds,
           "prune_startup_trials": tune.prune_startup_trials, "metric": metric, "objective": objective,
           "trial_n_estimators": tune.trial_n_estimators, "data": data}
    if tune.startup_trials is not None:  # only when set: studies named before it existed keep their names
        key["startup_trials"] = tune.startup_trials
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{prefix}-{digest}"


def journal_path(study_dir: str, name: str) -> Path:
    """The study's journal file: a local path (file:// allowed); Optuna appends to it with file locks,
    which cloud URIs cannot take."""
    if study_dir.startswith("file://"):
        study_dir = study_dir[len("file://"):]
    elif "://" in study_dir or study_dir.startswith("dbfs:"):
        raise ConfigError(f"training.tune.study_dir: the Optuna journal needs a local path, found {study_dir!r} "
                          "(storage.root when study_dir is unset); set training.tune.study_dir to a local or "
                          "mounted directory (/dbfs/..., /Volumes/...)")
    return Path(study_dir) / f"{name}.journal"


# TPESampler's own default n_startup_trials (training.tune.startup_trials unset).
OPTUNA_STARTUP_TRIALS = 10


def open_study(tune: TuneConfig, *, name: str, study_dir: str, higher_is_better: bool) -> optuna.Study:
    """The study in its journal file, created or loaded. The sampler's seed is offset by the trials
    already there, so a resumed study does not propose its first (random) points again."""
    path = journal_path(study_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(path)))
    existing = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(storage)}.get(name, 0)
    seed = tune.seed + existing
    sampler: optuna.samplers.BaseSampler = (
        optuna.samplers.RandomSampler(seed=seed) if tune.algo == "random"
        else optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True,
                                        n_startup_trials=tune.startup_trials or OPTUNA_STARTUP_TRIALS))
    pruner: optuna.pruners.BasePruner
    if tune.pruner == "median":
        pruner = optuna.pruners.MedianPruner(n_startup_trials=tune.prune_startup_trials,
                                             n_warmup_steps=tune.prune_after_rounds)
    elif tune.pruner == "successive_halving":
        pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=tune.prune_after_rounds, reduction_factor=3)
    else:
        pruner = optuna.pruners.NopPruner()
    return optuna.create_study(storage=storage, sampler=sampler, pruner=pruner, study_name=name,
                               direction="maximize" if higher_is_better else "minimize", load_if_exists=True)


class TrialControl:
    """What a trial runner gets besides its parameters: `report(round, value)` tells Optuna the
    trial's validation value after a boosting round (in the study's direction) and answers
    whether the pruner stops it; `prune` is None when the study does not prune."""

    def __init__(self, trial: optuna.Trial, *, prune: bool) -> None:
        self.trial, self.prune = trial, prune

    def report(self, round_: int, value: float) -> bool:
        if math.isnan(value):
            return False
        self.trial.report(value, round_)
        return self.prune and self.trial.should_prune()


TrialRunner = Callable[[dict[str, Any], TrialControl], TrialOutcome]


def _record(number: int, frozen: optuna.trial.FrozenTrial, *, resumed: bool) -> dict[str, Any]:
    attrs = frozen.user_attrs
    pruned = frozen.state == TrialState.PRUNED
    metric = frozen.value if frozen.state == TrialState.COMPLETE else None
    seconds = attrs.get("seconds")
    if seconds is None and frozen.datetime_start and frozen.datetime_complete:
        seconds = (frozen.datetime_complete - frozen.datetime_start).total_seconds()
    return {"params": _typed(frozen.params), "metric": metric, "rounds": attrs.get("rounds", 0),
            "seconds": seconds or 0.0, "error": attrs.get("error"), "trial": number,
            "state": frozen.state.name.lower(), "pruned_at": frozen.last_step if pruned else None,
            "optuna_trial": frozen.number, "resumed": resumed}


def _typed(params: dict[str, Any]) -> dict[str, Any]:
    return {k: int(v) if k in INTEGER_PARAMS and isinstance(v, float) and v.is_integer() else v
            for k, v in params.items()}


def _counts(frozen: optuna.trial.FrozenTrial) -> bool:
    """Whether a finished trial spent the budget (an interrupted one, left by a dead driver, did not)."""
    return frozen.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
        frozen.state == TrialState.FAIL and not frozen.user_attrs.get(INTERRUPTED))


def resume(study: optuna.Study) -> list[dict[str, Any]]:
    """The study's finished trials as search records; trials left running are marked failed."""
    records: list[dict[str, Any]] = []
    for frozen in study.get_trials(deepcopy=False):
        if frozen.state == TrialState.RUNNING:  # WAITING: enqueued, asked for next
            study._storage.set_trial_user_attr(frozen._trial_id, INTERRUPTED, True)
            study.tell(frozen.number, state=TrialState.FAIL, skip_if_finished=True)
            log.warning("optuna study %s: trial %d was left running by an earlier driver; marked failed "
                        "(it does not count against max_evals)", study.study_name, frozen.number)
        elif _counts(frozen):
            records.append(_record(len(records), frozen, resumed=True))
    return records


def run_optuna_search(run_trial: TrialRunner, study: optuna.Study, space: dict[str, BaseDistribution], *,
                      parallelism: int, max_evals: int, timeout_seconds: float | None = None,
                      no_improvement_trials: int | None = None, prune: bool = False,
                      on_trial: Callable[[dict[str, Any]], None] | None = None,
                      clock: Callable[[], float] = time.monotonic) -> SearchResult:
    """Run trials from `parallelism` threads until a budget is spent (max_evals counts the study's
    earlier trials too); the result holds the earlier trials first (`resumed`: True), then the
    new ones in the order they ended. Budgets are checked before each trial starts."""
    higher = study.direction == optuna.study.StudyDirection.MAXIMIZE
    result = SearchResult(trials=resume(study), higher_is_better=higher)
    resumed = len(result.trials)
    if resumed:
        log.info("optuna study %s resumed with %d finished trials (max_evals %d)", study.study_name, resumed, max_evals)
    lock, started = threading.Lock(), clock()
    running = [0]
    errors: list[BaseException] = []

    def stop_reason() -> str:
        if errors:
            return "a trial's bookkeeping failed"
        if len(result.trials) + running[0] >= max_evals:
            return f"max_evals={max_evals} reached"
        if timeout_seconds is not None and clock() - started >= timeout_seconds:
            return f"timeout of {timeout_seconds:.0f}s reached"
        best = result.best
        since_best = len(result.trials) - 1 - best["trial"] if best is not None else 0
        if no_improvement_trials and since_best >= no_improvement_trials:
            return f"no improvement in {since_best} trials"
        return ""

    def worker() -> None:
        while True:
            with lock:
                if stop_reason():
                    return
                running[0] += 1
                trial = study.ask(fixed_distributions=space)
            try:
                params = _typed(trial.params)
                outcome = run_trial(params, TrialControl(trial, prune=prune))
                trial.set_user_attr("rounds", outcome.rounds)
                trial.set_user_attr("seconds", outcome.seconds)
                if outcome.pruned_at is not None:
                    frozen = study.tell(trial, state=TrialState.PRUNED)
                elif outcome.metric is None or math.isnan(outcome.metric):
                    trial.set_user_attr("error", (outcome.error or "no metric")[:500])
                    frozen = study.tell(trial, state=TrialState.FAIL)
                else:
                    frozen = study.tell(trial, outcome.metric)
                with lock:
                    record = _record(len(result.trials), frozen, resumed=False)
                    record.update(rounds=outcome.rounds, seconds=outcome.seconds)
                    result.trials.append(record)
                    running[0] -= 1
                if on_trial:
                    on_trial(record)
            except BaseException as exc:  # noqa: BLE001 - kept, the search stops, re-raised below
                with lock:
                    errors.append(exc)
                    running[0] -= 1
                return

    threads = [threading.Thread(target=worker, name=f"optuna-trial-{i}", daemon=True) for i in range(parallelism)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    result.stop_reason = stop_reason() or "budget reached"
    result.seconds = clock() - started
    pruned = sum(1 for t in result.trials[resumed:] if t["state"] == "pruned")
    log.info("optuna search stopped (%s) after %d new trials (%d pruned, %d resumed) in %.1fs; best %s",
             result.stop_reason, len(result.trials) - resumed, pruned, resumed, result.seconds,
             result.best and result.best["metric"])
    return result
