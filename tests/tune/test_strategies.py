"""Both tuning strategies end to end on small data, and how `auto` chooses between them."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from lakeboost.config.training import TrainingConfig
from lakeboost.train.preflight import ClusterResources
from lakeboost.tune.job import choose_strategy, search_hyperparameters
from pyspark.sql import SparkSession

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
def test_strategy_runs_trials_and_logs_a_child_run_each(spark: SparkSession, tmp_path: Path, strategy: str) -> None:
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
