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
