"""Checkpointed fits: a fit whose barrier task dies mid-boosting resumes from its last checkpoint
and ends with the uninterrupted fit's booster, tree for tree."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import xgboost
from lakeboost.config.training import TrainingConfig
from lakeboost.errors import TrainingError
from lakeboost.features.training_set import TrainingSet
from lakeboost.model.tracking import use_tracking
from lakeboost.train.checkpoint import CheckpointStore, Resumable, checkpoint_root
from lakeboost.train.job import log_fit_record
from lakeboost.train.trainer import train_model
from pyspark.sql import SparkSession
from xgboost.callback import TrainingCallback

from tests.helpers import make_config
from tests.train.conftest import synthetic

# Sampling (rows and columns) and early stopping: the settings whose state a continuation loses.
PARAMS = {"objective": "binary:logistic", "tree_method": "hist", "eval_metric": "logloss", "seed": 7, "nthread": 1,
          "max_depth": 3, "learning_rate": 0.3, "subsample": 0.8, "colsample_bytree": 0.7}


def _matrices(seed: int = 0) -> tuple[xgboost.DMatrix, xgboost.DMatrix]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3000, 6)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(size=3000) > 0.8).astype(np.float32)
    return xgboost.QuantileDMatrix(x[:2400], y[:2400]), xgboost.DMatrix(x[2400:], y[2400:])


def _boost(resumable: Resumable, rounds: int, patience: int | None) -> tuple[xgboost.Booster, dict]:
    train, valid = _matrices()
    history: dict = {}
    booster = resumable.train(xgboost.train, PARAMS, train, num_boost_round=rounds, early_stopping_rounds=patience,
                              evals=[(valid, "validation")], evals_result=history, verbose_eval=False)
    return booster, history


@pytest.mark.parametrize("patience", [None, 5])
def test_a_continuation_from_a_checkpoint_equals_the_uninterrupted_booster(tmp_path: Path,
                                                                          patience: int | None) -> None:
    rounds, every = 60, 4
    whole, whole_history = _boost(Resumable(CheckpointStore(str(tmp_path / "whole")), every), rounds, patience)
    store = CheckpointStore(str(tmp_path / "cut"))
    # A fit that died after round 17 (its checkpoints stop at 16), then the same fit resumed from round 16.
    _boost(Resumable(store, every), 17, patience)
    assert store.rounds() == [12, 16]  # the newest two are kept
    resumed, resumed_history = _boost(Resumable(store, every, resume_from=16), rounds, patience)

    assert resumed.get_dump(with_stats=True) == whole.get_dump(with_stats=True)
    assert resumed.attributes() == whole.attributes()  # early stopping's best_iteration and best_score
    assert resumed_history == whole_history  # the learning curve, saved rounds then the resumed ones
    if patience:  # early stopping fired after the resume, at the uninterrupted fit's round
        assert 16 < whole.num_boosted_rounds() < rounds and int(whole.attr("best_iteration")) < 16

    # xgboost's own continuation, without the seeding by round, draws other rows and columns.
    unseeded = {**PARAMS, "seed_per_iteration": False}
    straight = xgboost.train(unseeded, _matrices()[0], rounds)
    first = xgboost.train(unseeded, _matrices()[0], 12)
    continued = xgboost.train(unseeded, _matrices()[0], rounds - 12,
                              xgb_model=xgboost.Booster(model_file=first.save_raw("ubj")))
    assert continued.get_dump() != straight.get_dump()


# A few thousand rows, two workers, sampled rows and columns, early stopping: small and quick.
RESUMED_FIT = {"calibration": {"method": "none"},
               "model": {"num_workers": 2, "n_estimators": 40, "early_stopping_rounds": 8, "checkpoint_every": 5,
                         "fit_retries": 1, "params": {"max_depth": 3, "learning_rate": 0.3, "subsample": 0.8,
                                                      "colsample_bytree": 0.8}}}
KILLED_AFTER = 13  # rounds


@pytest.fixture(scope="module")
def resume_set(spark: SparkSession) -> TrainingSet:
    return synthetic(spark, rows=3000, positive_rate_logit=-3.5)


def stopped_after(rounds: int, marker: Path, partition: int = 1) -> list[TrainingCallback]:
    """An xgboost callback (it travels to the workers with the fit) with which barrier task
    `partition`'s Python worker, after `rounds` rounds of its first attempt, writes its pid and
    the round to `marker` and waits for the test to kill it (local mode: the driver's disk)."""

    class StopForKill(TrainingCallback):
        def after_iteration(self, model, epoch, evals_log):
            from pyspark import BarrierTaskContext

            if epoch + 1 == rounds and BarrierTaskContext.get().partitionId() == partition:
                try:
                    fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    return False  # a later attempt
                os.write(fd, f"{os.getpid()} {model.num_boosted_rounds()}".encode())
                os.close(fd)
                time.sleep(120)  # killed long before
            return False

    return [StopForKill()]


def _trees(result) -> list[str]:
    return result.model.get_booster().get_dump(dump_format="json", with_stats=True)


def test_a_fit_whose_worker_is_killed_mid_boosting_resumes_into_the_uninterrupted_booster(
        resume_set: TrainingSet, tmp_path: Path) -> None:
    cfg = TrainingConfig.model_validate(RESUMED_FIT)
    clean = train_model(resume_set, cfg, evaluate_test=False)

    marker = tmp_path / "stopped"
    fit: dict = {}
    fitting = threading.Thread(target=lambda: fit.update(result=train_model(
        resume_set, cfg, param_overrides={"callbacks": stopped_after(KILLED_AFTER, marker)}, evaluate_test=False)))
    fitting.start()
    deadline = time.monotonic() + 120
    while not (marker.exists() and marker.read_text()) and fitting.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid, killed_at = map(int, marker.read_text().split())
    assert pid != os.getpid() and killed_at == KILLED_AFTER
    os.kill(pid, signal.SIGKILL)  # barrier task 1's Python worker, mid-fit
    fitting.join(timeout=300)
    resumed = fit["result"]

    # The first attempt died; the second loaded the checkpoint after round 10 and boosted the rest.
    assert [a.error is not None for a in resumed.attempts] == [True, False]
    assert [a.resumed_from for a in resumed.attempts] == [0, 10]
    lost = killed_at - resumed.attempts[1].resumed_from
    assert 0 < lost <= cfg.model.checkpoint_every
    # Tree for tree the uninterrupted booster (early stopping ended both at the same round), and the
    # same learning curve, the saved rounds' then the resumed ones'.
    assert _trees(resumed) == _trees(clean) and clean.rounds > killed_at
    clean_trees = clean.model.get_booster().num_boosted_rounds()
    assert resumed.model.get_booster().num_boosted_rounds() == clean_trees
    assert resumed.model.training_summary.validation_objective_history == \
        clean.model.training_summary.validation_objective_history
    # (the exact AUCs' distributed sums may differ in the last digit from run to run)
    assert resumed.metrics["valid"] == pytest.approx(clean.metrics["valid"], rel=1e-12)
    # The run's learning curves: train (the workers' fixed samples) and valid, one point per round.
    use_tracking(make_config(tmp_path))
    with mlflow.start_run() as run:
        log_fit_record(resumed)
    client, summary = mlflow.MlflowClient(), resumed.model.training_summary
    for split, history in (("train", summary.train_objective_history), ("valid", summary.validation_objective_history)):
        points = client.get_metric_history(run.info.run_id, f"curve_{split}_aucpr")
        assert [p.step for p in sorted(points, key=lambda p: p.step)] == list(range(clean_trees))
        assert [p.value for p in sorted(points, key=lambda p: p.step)] == pytest.approx(history["aucpr"])
    assert mlflow.get_run(run.info.run_id).data.params["fit_attempts"] == "2"
    print(f"\nkilled after round {killed_at}, resumed from round {resumed.attempts[1].resumed_from} "
          f"({lost} rounds lost); attempts {[round(a.seconds, 1) for a in resumed.attempts]} s, "
          f"uninterrupted fit {clean.seconds:.1f} s: {resumed.seconds - clean.seconds:+.1f} s; "
          f"{clean.model.get_booster().num_boosted_rounds()} trees equal")


def test_checkpoints_on_a_cluster_need_a_shared_directory_named_in_the_refusal() -> None:
    with pytest.raises(TrainingError, match=r"checkpoint_every on a cluster needs training.model.worker_files_dir"):
        checkpoint_root(None, master="spark://host:7077")
    assert checkpoint_root("s3://bucket/tmp/", master="spark://host:7077").startswith("s3://bucket/tmp/checkpoints-")
    assert checkpoint_root(None, master="local[2]").startswith(tempfile.gettempdir())
