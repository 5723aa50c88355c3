"""The Optuna backend: the search space translated from the same config as Hyperopt's, a study that
a restarted driver resumes, and distributed trials pruned per boosting round whose Spark jobs (and
xgboost workers) really stop."""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path

import mlflow
import optuna
import pytest
from lakeboost.config.training import TrainingConfig
from lakeboost.config.tuning import SearchParam, TuneConfig
from lakeboost.errors import ConfigError
from lakeboost.tune.job import search_hyperparameters
from lakeboost.tune.optuna_search import (
    TrialControl,
    journal_path,
    open_study,
    optuna_space,
    run_optuna_search,
)
from lakeboost.tune.pruning import distributed_trial_runner
from lakeboost.tune.search import TrialOutcome, run_search
from lakeboost.tune.space import hyperopt_space
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from pyspark.sql import SparkSession

from tests.train.conftest import synthetic

SPACE = {"x": SearchParam(kind="uniform", low=-5, high=5),
         "max_depth": SearchParam(kind="quniform", low=2, high=8, q=1),
         "c": SearchParam(kind="choice", options=("a", "b"))}


def peak(params, control=None) -> TrialOutcome:
    return TrialOutcome(metric=math.exp(-(params["x"] - 1.5) ** 2) - 0.05 * abs(params["max_depth"] - 6)
                        - (0.1 if params["c"] == "a" else 0.0), rounds=10)


def test_the_hyperopt_space_config_translates_and_what_cannot_is_refused() -> None:
    space = optuna_space({**SPACE, "lr": SearchParam(kind="loguniform", low=0.01, high=0.3),
                          "gamma": SearchParam(kind="quniform", low=0, high=1, q=0.25)})
    assert space == {"x": FloatDistribution(-5, 5), "max_depth": IntDistribution(2, 8, step=1),
                     "c": CategoricalDistribution(["a", "b"]), "lr": FloatDistribution(0.01, 0.3, log=True),
                     "gamma": FloatDistribution(0, 1, step=0.25)}
    with pytest.raises(ConfigError, match=r"training.tune.space.max_bin: quniform from 16 to 100 in steps of 32 .*"
                                          r"Set high to 80 or 112"):
        optuna_space({"max_bin": SearchParam(kind="quniform", low=16, high=100, q=32)})
    with pytest.raises(ConfigError, match=r"space.booster: Optuna's choices must be numbers, strings.*\{'a': 1\}"):
        optuna_space({"booster": SearchParam(kind="choice", options=({"a": 1}, "gbtree"))})
    with pytest.raises(ConfigError, match="max_depth: an integer parameter needs whole"):
        optuna_space({"max_depth": SearchParam(kind="quniform", low=2, high=3, q=0.5)})
    with pytest.raises(ConfigError, match=r"training.tune.study_dir: the Optuna journal needs a local path, "
                                          r"found 's3a://lake/root/tune'"):
        journal_path("s3a://lake/root/tune", "s")
    assert journal_path("file:///tmp/t", "s") == Path("/tmp/t/s.journal")
    with pytest.raises(ValueError, match="anneal has no Optuna sampler"):
        TuneConfig(backend="optuna", algo="anneal")


def test_a_restarted_driver_resumes_the_study_and_runs_only_the_remaining_budget(tmp_path: Path) -> None:
    tune = TuneConfig(backend="optuna", seed=5, space=SPACE, pruner="none")
    space = optuna_space(SPACE)
    evaluated: list[dict] = []

    def counted(params, control):
        evaluated.append(params)
        return peak(params)

    def crash_after_three(record):
        if len(evaluated) == 3:
            raise RuntimeError("driver lost (failure point: after trial 3 was told)")

    study = open_study(tune, name="s", study_dir=str(tmp_path), higher_is_better=True)
    with pytest.raises(RuntimeError, match="driver lost"):
        run_optuna_search(counted, study, space, parallelism=1, max_evals=8, on_trial=crash_after_three)
    # Where it struck: three trials told and in the journal, nothing running.
    on_disk = open_study(tune, name="s", study_dir=str(tmp_path), higher_is_better=True).get_trials()
    assert [t.state for t in on_disk] == [TrialState.COMPLETE] * 3 and len(evaluated) == 3
    # A driver that died mid-trial leaves one running: the restart marks it failed, uncounted.
    open_study(tune, name="s", study_dir=str(tmp_path), higher_is_better=True).ask(fixed_distributions=space)

    restarted = open_study(tune, name="s", study_dir=str(tmp_path), higher_is_better=True)
    result = run_optuna_search(counted, restarted, space, parallelism=2, max_evals=8)
    assert len(evaluated) == 3 + 5 and len(result.trials) == 8
    assert [t["resumed"] for t in result.trials] == [True] * 3 + [False] * 5
    assert [t["params"] for t in result.trials[:3]] == evaluated[:3]
    # The restart did not propose the first run's points again (its seed moved with the study).
    assert not any(p in evaluated[:3] for p in evaluated[3:])
    states = [t.state for t in restarted.get_trials()]
    assert states.count(TrialState.FAIL) == 1 and states.count(TrialState.COMPLETE) == 8
    assert result.best["metric"] == max(t["metric"] for t in result.trials)
    # Spent: a third run has nothing left to do.
    again = run_optuna_search(counted, open_study(tune, name="s", study_dir=str(tmp_path), higher_is_better=True),
                              space, parallelism=2, max_evals=8)
    assert len(evaluated) == 8 and again.stop_reason == "max_evals=8 reached"


def test_multivariate_tpe_moves_towards_the_peak_and_budgets_hold(tmp_path: Path) -> None:
    tune = TuneConfig(backend="optuna", seed=3, space=SPACE, pruner="none")
    study = open_study(tune, name="peak", study_dir=str(tmp_path), higher_is_better=True)
    result = run_optuna_search(peak, study, optuna_space(SPACE), parallelism=1, max_evals=30)  # one: reproducible
    values = [t["metric"] for t in result.trials]
    assert len(values) == 30 and result.stop_reason == "max_evals=30 reached"
    assert sorted(values[15:])[7] > sorted(values[:15])[7] and result.best["metric"] > 0.9
    assert isinstance(result.trials[0]["params"]["max_depth"], int)
    first_is_best = run_optuna_search(lambda p, c: TrialOutcome(metric=0.0), open_study(
        tune, name="flat", study_dir=str(tmp_path), higher_is_better=True), optuna_space(SPACE), parallelism=1,
        max_evals=50, no_improvement_trials=4)
    assert len(first_is_best.trials) == 5 and first_is_best.stop_reason == "no improvement in 4 trials"


@pytest.mark.parametrize("backend", ["optuna", "hyperopt"])
def test_tpe_draws_startup_trials_at_random_then_proposes_from_its_model(tmp_path: Path, backend: str) -> None:
    # TPE's start-up trials are drawn with the seed as random search draws them: the same points as
    # random search's, up to training.tune.startup_trials, and its own after.
    def proposals(algo: str, startup: int | None, evals: int) -> list[float]:
        tune = TuneConfig(backend=backend, algo=algo, seed=3, space=SPACE, pruner="none", startup_trials=startup)
        if backend == "hyperopt":
            result = run_search(lambda batch: [peak(p) for p in batch], hyperopt_space(SPACE), algo=algo, seed=3,
                                batch_size=1, max_evals=evals, startup_trials=tune.startup_trials)
        else:
            study = open_study(tune, name=f"{algo}-{startup}", study_dir=str(tmp_path), higher_is_better=True)
            result = run_optuna_search(peak, study, optuna_space(SPACE), parallelism=1, max_evals=evals)
        return [t["params"]["x"] for t in result.trials]

    random = proposals("random", None, 12)
    four = proposals("tpe", 4, 12)
    assert four[:4] == random[:4] and four[4] != random[4]
    # Default: the sampler's own start-up (Optuna 10, Hyperopt 20).
    assert proposals("tpe", None, 10) == random[:10]
    with pytest.raises(ValueError, match="startup_trials"):
        TuneConfig(startup_trials=0)


GOOD, BAD = {"max_depth": 3, "learning_rate": 0.3}, {"max_depth": 2, "learning_rate": 0.001}


def test_a_trial_falling_behind_is_pruned_its_spark_jobs_cancelled_and_its_slots_reused(
        spark: SparkSession, tmp_path: Path) -> None:
    # Log loss per round (lower is better) while the search maximises PR AUC: the curve is negated.
    cfg = TrainingConfig.model_validate({
        "model": {"num_workers": 2, "n_estimators": 20, "early_stopping_rounds": 5, "eval_metric": "logloss"},
        "tune": {"backend": "optuna", "strategy": "distributed", "trial_n_estimators": 3000,
                 "prune_startup_trials": 1, "prune_after_rounds": 3,
                 "space": {"max_depth": {"kind": "quniform", "low": 2, "high": 4, "q": 1},
                           "learning_rate": {"kind": "loguniform", "low": 0.001, "high": 0.3}}}})
    assert cfg.tune is not None
    training = synthetic(spark, rows=3000)
    study = open_study(cfg.tune, name="prune", study_dir=str(tmp_path), higher_is_better=True)
    for params in (GOOD, BAD, GOOD):
        study.enqueue_trial(params)
    runner = distributed_trial_runner(training, cfg, concurrency=1, metric="pr_auc", study_dir=str(tmp_path),
                                      prune=True, higher_is_better=True)
    ended: list[float] = []
    listening_before, trackers_before = _listening_sockets(), _tracker_threads()

    def timed(params, control: TrialControl) -> TrialOutcome:
        outcome = runner(params, control)
        ended.append(time.monotonic())
        return outcome

    result = run_optuna_search(timed, study, optuna_space(cfg.tune.space), parallelism=1, max_evals=3, prune=True)

    states = [t["state"] for t in result.trials]
    assert states == ["complete", "pruned", "complete"], result.trials
    pruned = result.trials[1]
    # Stopped at its first round past the warm-up, not 3000 rounds later.
    assert pruned["pruned_at"] == 3 and pruned["metric"] is None
    curve = sorted((tmp_path / "curves").glob("*.curve"), key=os.path.getmtime)[1].read_text().splitlines()
    pid = int(curve[0].split()[2])
    rounds_written = len(curve)
    # Its jobs were cancelled: nothing of it runs on the cluster, its xgboost worker is gone (Spark
    # killed the Python worker of the killed barrier task), and the curve stopped growing.
    assert spark.sparkContext.statusTracker().getActiveJobsIds() == []
    deadline = time.monotonic() + 15
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid), f"the pruned trial's xgboost worker (pid {pid}) still runs"
    # Rounds of ~1 ms here: the driver's poll (every 0.25 s) reads round 3 a few hundred rounds later.
    assert rounds_written < 3000
    assert len(sorted((tmp_path / "curves").glob("*.curve"), key=os.path.getmtime)[1].read_text().splitlines()) \
        == rounds_written
    # Its slots went to the next trial, which completed.
    assert result.trials[2]["metric"] is not None and result.trials[2]["rounds"] >= 1
    # Nothing of the three fits is left on the driver: xgboost's tracker (a listening socket and a
    # thread waiting on it per fit) ends with each fit, the pruned one too, whose workers never say
    # goodbye (xgboost.spark's own tracker waits for them for ever: one thread and port per pruned trial).
    listening_after, trackers_after = _listening_sockets(), _tracker_threads()
    print(f"\npruned at round {pruned['pruned_at']} ({rounds_written} rounds written of 3000) after "
          f"{pruned['seconds']:.1f} s; trials {[(t['state'], t['rounds'], t['seconds']) for t in result.trials]}; "
          f"driver: listening sockets {len(listening_before)} -> {len(listening_after)}, tracker threads "
          f"{trackers_before} -> {trackers_after}, threads {threading.active_count()}")
    assert listening_after - listening_before == set(), "a fit's tracker still listens on the driver"
    assert trackers_after == trackers_before


def _listening_sockets() -> set[int]:
    """The inodes of this process's listening TCP sockets (Linux /proc)."""
    mine = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            mine.add(int(target[8:-1]))
    listening = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if fields[3] == "0A" and int(fields[9]) in mine:  # 0A: LISTEN
                    listening.add(int(fields[9]))
    return listening


def _tracker_threads() -> list[str]:
    """Threads waiting on an xgboost tracker: xgboost.spark's (target RabitTracker.wait_for) or lakeboost's."""
    return sorted(t.name for t in threading.enumerate() if "wait_for" in t.name or "xgboost-tracker" in t.name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie has stopped too
        return stat.read().split()[2] != "Z"


def test_a_second_tune_call_with_the_same_study_runs_only_the_remaining_trials(
        spark: SparkSession, tmp_path: Path) -> None:
    def config(max_evals: int) -> TrainingConfig:
        return TrainingConfig.model_validate({
            "model": {"num_workers": 2, "n_estimators": 20, "early_stopping_rounds": 5},
            "tune": {"backend": "optuna", "strategy": "single_node", "max_evals": max_evals,
                     "trial_n_estimators": 20, "no_improvement_trials": None,
                     "space": {"max_depth": {"kind": "quniform", "low": 2, "high": 5, "q": 1}}}})

    training = synthetic(spark, rows=2000)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = mlflow.create_experiment("optuna-resume", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        first, _ = search_hyperparameters(spark, training, config(2), study_dir=str(tmp_path / "tune"))
    with mlflow.start_run(experiment_id=experiment) as second_run:
        second, _ = search_hyperparameters(spark, training, config(3), study_dir=str(tmp_path / "tune"))

    assert [t["resumed"] for t in second.trials] == [True, True, False]
    assert [(t["params"], t["metric"]) for t in second.trials[:2]] == [(t["params"], t["metric"]) for t in first.trials]
    run = mlflow.get_run(second_run.info.run_id)
    assert run.data.metrics["resumed_trials"] == 2 and run.data.params["backend"] == "optuna"
    children = mlflow.search_runs([experiment],
                                  filter_string=f"tags.mlflow.parentRunId = '{second_run.info.run_id}'")
    assert len(children) == 1  # only the new trial ran (and was logged) under the second call
    journal = Path(run.data.tags["optuna_journal"])
    assert journal == journal_path(str(tmp_path / "tune"), run.data.tags["optuna_study"]) and journal.exists()
    logged = mlflow.artifacts.download_artifacts(run_id=second_run.info.run_id, artifact_path="optuna",
                                                 dst_path=str(tmp_path / "logged"))
    assert (Path(logged) / journal.name).read_bytes() == journal.read_bytes()
    assert len(optuna.load_study(study_name=run.data.tags["optuna_study"], storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal)))).trials) == 3


@pytest.mark.parametrize("pruner", ["median", "successive_halving"])
def test_either_pruner_stops_a_curve_that_falls_behind_and_lets_good_ones_finish(tmp_path: Path, pruner: str) -> None:
    # Trials whose per-round value is their `x`, reported round by round as a runner does; the
    # runner stops at the first round the control says so.
    tune = TuneConfig(backend="optuna", pruner=pruner, prune_after_rounds=2, prune_startup_trials=2,
                      space={"x": SearchParam(kind="uniform", low=0, high=1)})
    study = open_study(tune, name=pruner, study_dir=str(tmp_path), higher_is_better=True)
    for x in (0.9, 0.8, 0.85, 0.1, 0.95):
        study.enqueue_trial({"x": x})

    def curve(params, control: TrialControl) -> TrialOutcome:
        for round_ in range(20):
            if control.report(round_, params["x"]):
                return TrialOutcome(None, round_ + 1, pruned_at=round_)
        return TrialOutcome(params["x"], 20)

    result = run_optuna_search(curve, study, optuna_space(tune.space), parallelism=1, max_evals=5, prune=True)
    assert [t["state"] for t in result.trials][3] == "pruned" and result.trials[3]["pruned_at"] == 2
    assert result.trials[4]["state"] == "complete" and result.best["metric"] == 0.95
