"""Training over Spark Connect (a real Connect server, tests/conftest.py's `connect_spark`): the fit
takes xgboost.spark's own Connect path and says so, and the model it gives, its calibration,
metrics, threshold, saved files and loaded predictions are the classic session's on the same rows."""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from lakeboost.borrowed.xgboost_spark import ON_CONNECT
from lakeboost.config.training import TrainingConfig
from lakeboost.errors import EnvironmentSetupError, TrainingError
from lakeboost.features.training_set import TrainingSet
from lakeboost.model import CHALLENGER, Model, ModelMeta, load_model
from lakeboost.model.artifact import log_model
from lakeboost.model.tracking import use_tracking
from lakeboost.train.preflight import ClusterResources, check_barrier, cluster_resources, master_of, preflight
from lakeboost.train.trainer import TrainResult, train_model
from pyspark.sql import SparkSession

from tests.conftest import CONNECT_SERVER_MEMORY
from tests.helpers import make_config
from tests.train.conftest import synthetic

# The classic fit streams its rows too (worker files need the borrowed path, which Connect has not).
# Platt named: these balanced synthetic scores need no calibrator (`auto` keeps none), and the
# test checks that the stored calibrator travels over Connect too.
CFG = TrainingConfig.model_validate({"model": {"num_workers": 2, "n_estimators": 30, "early_stopping_rounds": 5,
                                               "worker_data": "spark",
                                               "params": {"max_depth": 3, "learning_rate": 0.3}},
                                     "calibration": {"method": "platt"}})
ROWS = 4000
# Over Connect xgboost.spark always repartitions the input round-robin into num_workers partitions
# (it cannot count a Connect frame's partitions), where a classic fit keeps lakeboost's stratified
# layout: the workers then sketch and sum different row sets (here 10 rounds against 5). Asked of
# both, the repartition gives each worker the same rows on either session.
SAME_ROWS = {"force_repartition": True}


def _training(spark: SparkSession) -> TrainingSet:
    return synthetic(spark, rows=ROWS, positive_rate_logit=-3.0)


def _scores(result: TrainResult) -> dict[str, pd.DataFrame]:
    return {split: frame.select("txn_id", "raw_score", "score").toPandas().sort_values("txn_id", ignore_index=True)
            for split, frame in result.predictions.items()}


@pytest.fixture(scope="module")
def classic(spark: SparkSession) -> tuple[TrainResult, dict[str, pd.DataFrame]]:
    """The classic session's fit (the borrowed path) of the same rows and parameters."""
    result = train_model(_training(spark), CFG, param_overrides=SAME_ROWS)
    return result, _scores(result)


def test_a_connect_fit_scores_saves_and_loads_as_the_classic_one(
        connect_spark: SparkSession, classic: tuple[TrainResult, dict[str, pd.DataFrame]],
        caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    expected, expected_scores = classic
    training = _training(connect_spark)
    with caplog.at_level(logging.INFO, logger="lakeboost"):
        result = train_model(training, CFG, param_overrides=SAME_ROWS)
    assert f"xgboost fit: stock path ({ON_CONNECT})" in [r.getMessage() for r in caplog.records]
    # The server's conf told the preflight its local[2] slots (no SparkContext to ask).
    assert cluster_resources(connect_spark).task_slots == 2

    # The same model: rounds, threshold, every split's raw and calibrated score per row, metrics.
    assert result.rounds == expected.rounds and set(result.predictions) == {"valid", "test"}
    assert result.threshold == pytest.approx(expected.threshold, abs=1e-6)
    scores = _scores(result)
    for split, frame in expected_scores.items():
        assert scores[split]["txn_id"].tolist() == frame["txn_id"].tolist() and len(frame) > 300
        np.testing.assert_allclose(scores[split][["raw_score", "score"]].to_numpy(),
                                   frame[["raw_score", "score"]].to_numpy(), rtol=0, atol=1e-6)
    assert result.calibrator is not None and expected.calibrator is not None
    for split, metrics in expected.metrics.items():
        assert set(result.metrics[split]) == set(metrics)
        for name, value in metrics.items():
            assert result.metrics[split][name] == pytest.approx(value, rel=1e-6, abs=1e-9), (split, name)

    # Saved over Connect into an MLflow run and loaded back: it predicts what the fitted model does.
    use_tracking(make_config(tmp_path, training={"tracking": {"registered_model": "connect_fit"}}))
    meta = ModelMeta(result.features, result.encodings, result.threshold, "binary:logistic", training.lineage(),
                     training.dataset.model_dump(mode="json"), result.calibrator.to_dict())
    with mlflow.start_run() as run:
        assert log_model(result.model, meta, registered_model="connect_fit") == 1
    loaded = load_model("connect_fit", CHALLENGER)
    rows = training.df.limit(500)
    in_memory = Model("connect_fit", 1, run.info.run_id, result.model, meta).predict(rows).toPandas()
    again = loaded.predict(rows).toPandas()
    assert len(again) == 500
    pd.testing.assert_frame_equal(again.sort_values("txn_id", ignore_index=True),
                                  in_memory.sort_values("txn_id", ignore_index=True))


def test_worker_files_are_refused_over_connect_with_what_to_set(connect_spark: SparkSession) -> None:
    files = CFG.model_copy(update={"model": CFG.model.model_copy(update={"worker_data": "files"})})
    with pytest.raises(EnvironmentSetupError, match=r"worker_data=files .* Set training.model.worker_data to auto"):
        train_model(_training(connect_spark), files)


def test_preflight_reads_the_connect_servers_conf_and_refuses_as_on_classic(
        connect_spark: SparkSession, caplog: pytest.LogCaptureFixture) -> None:
    resources = cluster_resources(connect_spark)
    assert master_of(connect_spark) == "local[2]"
    assert resources == ClusterResources(task_slots=2, executor_memory_bytes=int(CONNECT_SERVER_MEMORY[:-1]) * 2**30,
                                         dynamic_allocation=False)
    with pytest.raises(TrainingError, match=r"num_workers=8 but the cluster has 2 concurrent task slot"):
        preflight(resources, num_workers=8, rows=1000, features=10, max_memory_fraction=0.5)
    # A cluster whose conf fixes no executors: the slots are unknown, said, and not guessed.
    with caplog.at_level(logging.WARNING, logger="lakeboost"):
        check_barrier(ClusterResources(None, 2**34, False), num_workers=8)
    assert "task slots are unknown over Spark Connect" in caplog.text
