"""The train (and tune) step's boundaries: a fit the cluster cannot schedule is refused before it
costs anything."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import pytest
from lakeboost.errors import TrainingError
from lakeboost.model.tracking import use_tracking
from lakeboost.train.job import train_and_log
from lakeboost.train.trainer import train_model
from lakeboost.tune.job import tune_and_refit
from pyspark.sql import SparkSession

from tests.helpers import make_config, spark_jobs
from tests.train.conftest import synthetic

TOO_MANY = (r"training.model.num_workers=8 but the cluster has 2 concurrent task slot\(s\).*"
            r"Lower num_workers to at most 2")


def _refusal(action: Callable[[], Any]) -> TrainingError:
    with pytest.raises(TrainingError, match=TOO_MANY) as refused:
        action()
    return refused.value


def test_too_many_workers_are_refused_before_any_spark_job_or_mlflow_run(spark: SparkSession, tmp_path: Path) -> None:
    training = synthetic(spark, rows=300)  # never read: the refusal comes first
    config = make_config(tmp_path, training={"model": {"num_workers": 8}, "tune": {"max_evals": 2}})
    experiment = use_tracking(config)  # the store and experiment exist, empty

    refused, jobs = spark_jobs(spark, lambda: _refusal(lambda: train_and_log(spark, config, training)))
    # The tune step too: its refit could never run, so neither does its search.
    assert spark_jobs(spark, lambda: _refusal(lambda: tune_and_refit(spark, config, training)))[1] == 0

    assert refused.exit_code == 10 and jobs == 0
    use_tracking(config)
    assert mlflow.search_runs(experiment_ids=[experiment], output_format="list") == []
    # train_model itself (a fold, a tuning trial) refuses before its split and counts.
    assert spark_jobs(spark, lambda: _refusal(lambda: train_model(training, config.training)))[1] == 0
