"""Both tuning strategies end to end on small data, and how `auto` chooses between them."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import numpy as np
import pytest
from lakeboost.config import load_config
from lakeboost.config.training import TrainingConfig
from lakeboost.train.preflight import ClusterResources
from lakeboost.tune.job import choose_strategy, search_hyperparameters, tune_and_refit
from pyspark.sql import SparkSession

from tests.conftest import REPO
from tests.train.conftest import synthetic

SMALL_SPACE = {"max_depth": {"kind": "quniform", "low": 2, "high": 5, "q": 1},
               "learning_rate": {"kind": "loguniform", "low": 0.05, "high": 0.3}}


def tuning_config(strategy: str, **tune) -> TrainingConfig:
    return TrainingConfig.model_validate({
        "model": {"num_workers": 2, "n_estimators": 40, "early_stopping_rounds": 5},
        "tune": {"strategy": strategy, "max_evals": 4, "space": SMALL_SPACE, "trial_n_estimators": 40,
                 "no_improvement_trials": None, **tune},
    })


def test_auto_picks_single_node_for_small_data_and_distributed_for_large() -> None:
    resources = ClusterResources(task_slots=8, executor_memory_bytes=8 * 2**30, dynamic_allocation=False)
    small = choose_strategy(tuning_config("auto"), rows=100_000, features=50, resources=resources)
    large = choose_strategy(tuning_config("auto"), rows=50_000_000, features=50, resources=resources)
    assert (small.strategy, small.parallelism) == ("single_node", 8)
    assert (large.strategy, large.parallelism) == ("distributed", 4)  # 8 slots / 2 workers per trial
    assert "19.5 MiB <= single_node_max_mb 512" in small.reason
    told_large = choose_strategy(tuning_config("auto", single_node_max_mb=1), rows=100_000, features=50,
                                 resources=resources)
    assert told_large.strategy == "distributed"


@pytest.mark.parametrize("strategy", ["single_node", "distributed"])
def test_strategy_runs_trials_and_logs_a_child_run_each(spark: SparkSession, tmp_path: Path, strategy: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lakeboost.progress")
    training = synthetic(spark, rows=3000)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = mlflow.create_experiment("tune-test", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment) as parent:
        search, choice = search_hyperparameters(spark, training, tuning_config(strategy))

    assert choice.strategy == strategy
    assert len(search.trials) == 4 and search.stop_reason == "max_evals=4 reached"
    assert all(t["metric"] is not None and 0 < t["metric"] <= 1 and t["rounds"] >= 1 for t in search.trials)
    children = mlflow.search_runs([experiment], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 4 and children["metrics.valid_pr_auc"].notna().all()
    # Each trial's estimated cost; the parent's: the search as Spark measured it, and the trials' sum.
    assert (children["metrics.cost"] > 0).all()
    logged_costs = dict(zip(children["tags.mlflow.runName"], children["metrics.cost"], strict=True))
    assert logged_costs == pytest.approx({f"trial-{t['trial']:03d}": t["cost"] for t in search.trials})
    logged = mlflow.get_run(parent.info.run_id).data.metrics
    assert logged["trials_cost"] == pytest.approx(children["metrics.cost"].sum())
    assert logged["search_cost"] == pytest.approx(search.cost) and search.cost > 0
    assert logged["search_core_hours"] > 0
    # A line per trial as it ends (no terminal here), with its metric and the best so far.
    progress = [r.getMessage() for r in caplog.records if r.name == "lakeboost.progress"]
    assert [line.split(" done ")[0] for line in progress] == [f"tune: trial {n}/4" for n in range(1, 5)]
    best = max(search.trials, key=lambda t: t["metric"])
    assert f"; best {best['metric']:.4f} (#{best['trial']}))" in progress[-1]


def test_tune_logs_the_cost_of_the_search_and_of_the_best_model(spark: SparkSession, tmp_path: Path) -> None:
    config = load_config("local", [f"storage.root={tmp_path}/lake", f"storage.landing={tmp_path}/landing"],
                         conf_dir=REPO / "conf", environ={})
    config = config.model_copy(update={"training": tuning_config("single_node", max_evals=2)})
    summary = tune_and_refit(spark, config, synthetic(spark, rows=3000))

    details = summary.details
    assert details["trials"] == 2 and details["search_cost"] > 0 and details["best_model_cost"] > 0
    assert details["trials_cost"] > 0 and details["cost_currency"] == "USD"
    parent = mlflow.get_run(details["tune_run_id"]).data.metrics
    assert parent["search_cost"] == pytest.approx(details["search_cost"], abs=1e-6)
    assert parent["best_model_cost"] == pytest.approx(details["best_model_cost"], abs=1e-6)
    runs = mlflow.search_runs([mlflow.get_run(details["tune_run_id"]).info.experiment_id],
                              filter_string=f"tags.mlflow.parentRunId = '{details['tune_run_id']}'")
    costs = dict(zip(runs["tags.mlflow.runName"], runs["metrics.cost"], strict=True))
    assert sorted(costs) == ["best", "trial-000", "trial-001"] and all(c > 0 for c in costs.values())
    assert costs["best"] == pytest.approx(details["best_model_cost"], abs=1e-6)


@pytest.mark.parametrize(("kind", "objective", "metric"), [("regression", "reg:squarederror", "rmse"),
                                                          ("multiclass", "multi:softprob", "log_loss")])
def test_single_node_trials_of_other_objectives_score_their_own_metric(
        spark: SparkSession, tmp_path: Path, kind: str, objective: str, metric: str) -> None:
    training = synthetic(spark, rows=2000, kind=kind)
    cfg = tuning_config("single_node")
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"objective": objective})})
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = mlflow.create_experiment("tune-objectives", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        search, _ = search_hyperparameters(spark, training, cfg)

    # Before, every trial failed (AUC of continuous labels; multiclass without num_class).
    assert all(t["metric"] is not None and t["metric"] > 0 for t in search.trials), search.trials
    assert search.best["metric"] == min(t["metric"] for t in search.trials)  # lower is better


def test_a_single_node_trial_splits_on_native_categorical_codes() -> None:
    # Codes 0-3 with the positives in codes 1 and 3: no threshold on the code separates them,
    # a categorical split does (one depth-1 tree is enough).
    from lakeboost.tune.evaluators import Matrices, fit_single_node

    rng = np.random.default_rng(5)
    code = rng.integers(0, 4, size=2000).astype(np.float32)
    y = np.isin(code, (1, 3)).astype(np.float32)
    x = np.stack([code, rng.normal(size=2000).astype(np.float32)], axis=1)
    params = {"objective": "binary:logistic", "eval_metric": "auc", "max_depth": 1, "tree_method": "hist"}
    as_numbers = Matrices(x[:1500], y[:1500], x[1500:], y[1500:], ["shop", "noise"])
    as_categories = Matrices(x[:1500], y[:1500], x[1500:], y[1500:], ["shop", "noise"], ["c", "q"])
    numeric, native = (fit_single_node(m, params, 1, None, "roc_auc") for m in (as_numbers, as_categories))
    assert native.error is None and native.metric == 1.0 and numeric.metric < 0.8
