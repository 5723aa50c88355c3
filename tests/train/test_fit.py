"""The fit's own rules: worker threads, and the worker train function xgboost.spark inspects."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xgboost
from lakeboost.train.fit import (
    BOOSTING_ENDED,
    BOOSTING_STARTED,
    build_streamed_matrices,
    fit_phases,
    train_on_validation_rows,
    without_barrier_waits,
    worker_threads,
)
from pyspark.sql import SparkSession


def test_worker_threads_share_a_local_machine_and_follow_spark_on_a_cluster() -> None:
    assert worker_threads(None, master="local[8]", task_slots=8, num_workers=2) == 4
    assert worker_threads(None, master="local[2]", task_slots=2, num_workers=4) == 1
    assert worker_threads(None, master="spark://host:7077", task_slots=16, num_workers=4) is None
    assert worker_threads(3, master="spark://host:7077", task_slots=16, num_workers=4) == 3


def test_the_validation_only_train_reads_as_xgboost_train_and_drops_only_the_training_rows() -> None:
    # xgboost.spark sorts num_boost_round / early_stopping_rounds into train() keywords by this signature.
    assert inspect.signature(train_on_validation_rows) == inspect.signature(xgboost.train)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 3)), rng.integers(0, 2, 200)
    train, valid = xgboost.DMatrix(x[:150], label=y[:150]), xgboost.DMatrix(x[150:], label=y[150:])
    history: dict = {}
    booster = train_on_validation_rows({"objective": "binary:logistic", "eval_metric": "logloss"}, train,
                                       num_boost_round=4, evals=[(train, "training"), (valid, "validation")],
                                       evals_result=history, verbose_eval=False)
    assert list(history) == ["validation"] and len(history["validation"]["logloss"]) == 4
    assert booster.num_boosted_rounds() == 4


def test_fit_phases_split_the_wall_time_at_the_workers_boosting_and_leave_no_attribute_behind() -> None:
    rng = np.random.default_rng(1)
    train = xgboost.DMatrix(rng.normal(size=(50, 2)), label=rng.integers(0, 2, 50))
    booster = train_on_validation_rows({"objective": "binary:logistic"}, train, num_boost_round=2)
    began, ended = float(booster.attr(BOOSTING_STARTED)), float(booster.attr(BOOSTING_ENDED))
    assert began <= ended

    model = SimpleNamespace(get_booster=lambda: booster)
    phases = fit_phases(model, started=began - 3.0, ended=ended + 0.5)

    assert phases is not None and phases.before_boosting == pytest.approx(3.0)
    assert phases.boosting == pytest.approx(ended - began) and phases.after_boosting == pytest.approx(0.5)
    assert booster.attr(BOOSTING_STARTED) is None and booster.attr(BOOSTING_ENDED) is None
    assert fit_phases(model, started=0.0, ended=1.0) is None  # nothing recorded: no phases


def test_barrier_calls_are_answered_on_the_worker_and_spark_barriers_come_back_after(spark: SparkSession) -> None:
    def meet(_):
        from pyspark import BarrierTaskContext

        context = BarrierTaskContext.get()
        context.barrier()
        yield context.partitionId(), context.allGather(str(context.partitionId()))

    def gather(_):
        from pyspark import BarrierTaskContext

        context = BarrierTaskContext.get()
        yield context.allGather(str(context.partitionId()))

    tasks = spark.sparkContext.parallelize(range(2), 2).barrier()
    # Each task's own message for every task: no Spark barrier round (and no 1-s poll) was made.
    assert sorted(tasks.mapPartitions(without_barrier_waits(meet)).collect()) == [(0, ["0", "0"]), (1, ["1", "1"])]
    # The reused Python workers' contexts are Spark's again.
    assert tasks.mapPartitions(gather).collect() == [["0", "1"], ["0", "1"]]


def test_streamed_rows_get_a_plain_validation_dmatrix_and_a_base_margin_goes_through_xgboost_spark() -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300), "label": rng.integers(0, 2, 300),
                          "validationIndicator": rng.random(300) < 0.3})
    arguments = {"feature_cols": ["a", "b"], "dev_ordinal": None, "use_qdm": True,
                 "kwargs": {"nthread": 1, "missing": np.nan}, "enable_sparse_data_optim": False,
                 "has_validation_col": True}

    train, valid = build_streamed_matrices(iterator=iter([frame]), **arguments)
    assert isinstance(train, xgboost.QuantileDMatrix) and type(valid) is xgboost.DMatrix
    assert train.num_row() + valid.num_row() == 300

    # A column lakeboost's builder does not read (a base margin) leaves the building to xgboost.spark's.
    train, valid = build_streamed_matrices(iterator=iter([frame.assign(baseMargin=0.5)]), **arguments)
    assert isinstance(valid, xgboost.QuantileDMatrix)
    np.testing.assert_array_equal(train.get_base_margin(), np.full(train.num_row(), 0.5, dtype=np.float32))
