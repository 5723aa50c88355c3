"""Tuning trials over Spark Connect (tests/conftest.py's `connect_spark`): without a SparkContext
the single-node trials run as one mapInPandas task each, and report what the same fit reports here."""

from __future__ import annotations

import numpy as np
from lakeboost.tune.evaluators import Matrices, fit_single_node, single_node_evaluator
from pyspark.sql import SparkSession


def test_single_node_trials_run_as_tasks_on_the_connect_server_and_match_a_local_fit(
        connect_spark: SparkSession) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(600, 3)).astype(np.float32)
    y = (x[:, 0] + 0.5 * rng.normal(size=600) > 0).astype(np.float32)
    matrices = Matrices(x[:450], y[:450], x[450:], y[450:], ["a", "b", "c"])
    base = {"objective": "binary:logistic", "eval_metric": "aucpr", "seed": 3, "tree_method": "hist"}
    batch = [{"max_depth": 2, "learning_rate": 0.3}, {"max_depth": 4, "learning_rate": 0.1},
             {"max_depth": 3, "learning_rate": "not a number"}]
    evaluate = single_node_evaluator(connect_spark, matrices, base_params=base, n_estimators=30,
                                     early_stopping_rounds=5, metric="pr_auc")
    outcomes = evaluate(batch)
    expected = [fit_single_node(matrices, {**base, **params}, 30, 5, "pr_auc") for params in batch]
    assert [(o.metric, o.rounds) for o in outcomes[:2]] == [(e.metric, e.rounds) for e in expected[:2]]
    assert all(o.metric is not None and 0.5 < o.metric <= 1 for o in outcomes[:2])
    # A bad configuration fails its own trial, with xgboost's message, not the batch.
    assert outcomes[2].metric is None and outcomes[2].error and "learning_rate" in outcomes[2].error


def test_both_backends_run_distributed_trials_over_connect_and_optuna_prunes_by_interrupting_its_tag(
        connect_spark: SparkSession, tmp_path) -> None:
    import os
    import time

    from lakeboost.config.training import TrainingConfig
    from lakeboost.tune.evaluators import distributed_evaluator
    from lakeboost.tune.optuna_search import open_study, optuna_space, run_optuna_search
    from lakeboost.tune.pruning import distributed_trial_runner

    from tests.train.conftest import synthetic
    from tests.tune.test_optuna import BAD, GOOD, _alive

    cfg = TrainingConfig.model_validate({
        "model": {"num_workers": 2, "n_estimators": 20, "early_stopping_rounds": 5, "eval_metric": "logloss",
                  "worker_data": "spark"},
        "tune": {"backend": "optuna", "strategy": "distributed", "trial_n_estimators": 3000,
                 "prune_startup_trials": 1, "prune_after_rounds": 3,
                 "space": {"max_depth": {"kind": "quniform", "low": 2, "high": 4, "q": 1},
                           "learning_rate": {"kind": "loguniform", "low": 0.001, "high": 0.3}}}})
    assert cfg.tune is not None
    training = synthetic(connect_spark, rows=3000)
    # Hyperopt's distributed evaluator: one xgboost.spark fit over Connect.
    [hyperopt_trial] = distributed_evaluator(training, cfg, concurrency=1, metric="pr_auc")([GOOD])
    assert hyperopt_trial.metric is not None and hyperopt_trial.rounds >= 1, hyperopt_trial

    study = open_study(cfg.tune, name="connect", study_dir=str(tmp_path), higher_is_better=True)
    for params in (GOOD, BAD):
        study.enqueue_trial(params)
    runner = distributed_trial_runner(training, cfg, concurrency=1, metric="pr_auc", study_dir=str(tmp_path),
                                      prune=True, higher_is_better=True)
    result = run_optuna_search(runner, study, optuna_space(cfg.tune.space), parallelism=1, max_evals=2, prune=True)

    assert [t["state"] for t in result.trials] == ["complete", "pruned"], result.trials
    assert result.trials[0]["metric"] is not None
    assert result.trials[1]["pruned_at"] == 3
    curve = sorted((tmp_path / "curves").glob("*.curve"), key=os.path.getmtime)[1].read_text().splitlines()
    pid = int(curve[0].split()[2])  # the server's Python worker that ran rank 0
    deadline = time.monotonic() + 15
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid) and len(curve) < 3000
    print(f"\nover Connect: pruned at round 3 ({len(curve)} rounds written of 3000) after "
          f"{result.trials[1]['seconds']:.1f} s; the complete trial {result.trials[0]['seconds']:.1f} s")
