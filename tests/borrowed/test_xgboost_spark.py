"""The fit's borrowed path and its guard: inside the tested versions lakeboost's workers, outside
them (or switched off, or with an internal missing) xgboost.spark's stock fit, logged; both fit
the same model."""

from __future__ import annotations

import inspect
import logging
import socket
import threading
import time
from typing import Any

import numpy as np
import pytest
import xgboost
import xgboost.spark.core
from lakeboost.borrowed import SWITCH_ENV, PathChoice
from lakeboost.borrowed.xgboost_spark import (
    TESTED,
    DriverTracker,
    estimator,
    fit_path,
    validation_only,
    without_barrier_waits,
)
from lakeboost.config.training import TrainingConfig
from lakeboost.features.training_set import TrainingSet
from lakeboost.train.trainer import train_model
from pyspark.ml.linalg import Vectors
from pyspark.sql import SparkSession
from xgboost.spark import SparkXGBRegressor

from tests.train.conftest import synthetic

INSIDE = {"xgboost": "3.4.1", "pyspark": "4.2.0"}


def test_the_installed_versions_are_the_tested_ones(spark: SparkSession) -> None:
    assert all(t.covers(v) for t in TESTED for k, v in INSIDE.items() if t.package == k)
    assert fit_path(spark.range(1)).borrowed  # this suite runs the borrowed path by default


@pytest.mark.parametrize("versions, why", [
    ({"xgboost": "3.5.0"}, "xgboost 3.5.0 is outside the tested range xgboost >=3.3,<3.5"),
    ({"xgboost": "3.2.0"}, "xgboost 3.2.0 is outside the tested range xgboost >=3.3,<3.5"),
    ({"pyspark": "4.3.0.dev1"}, "pyspark 4.3.0.dev1 is outside the tested range pyspark >=4.2,<4.3"),
])
def test_a_version_outside_the_tested_range_takes_the_stock_path_and_says_so(
        spark: SparkSession, caplog: pytest.LogCaptureFixture, versions: dict[str, str], why: str) -> None:
    with caplog.at_level(logging.INFO, logger="lakeboost.borrowed"):
        choice = fit_path(spark.range(1), versions={**INSIDE, **versions})
    assert not choice.borrowed and choice.reason == why
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == \
        [(logging.WARNING, f"xgboost fit: stock path ({why})")]


def test_a_missing_internal_or_the_switch_takes_the_stock_path(spark: SparkSession,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    frame = spark.range(1)
    monkeypatch.delattr(xgboost.spark.core._SparkXGBEstimator, "_prepare_input")
    assert fit_path(frame).reason == "xgboost.spark has no _prepare_input"
    monkeypatch.undo()
    monkeypatch.setenv(SWITCH_ENV, "off")
    assert fit_path(frame).reason == "LAKEBOOST_BORROWED=off"
    assert fit_path(frame, force_stock=True).reason == "stock path requested"


def test_the_validation_only_train_reads_as_xgboost_train_and_drops_only_the_training_rows() -> None:
    # xgboost.spark sorts num_boost_round / early_stopping_rounds into train() keywords by this signature.
    worker_train = validation_only(xgboost.train)
    assert inspect.signature(worker_train) == inspect.signature(xgboost.train)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 3)), rng.integers(0, 2, 200)
    train, valid = xgboost.DMatrix(x[:150], label=y[:150]), xgboost.DMatrix(x[150:], label=y[150:])
    history: dict = {}
    booster = worker_train(params={"objective": "binary:logistic", "eval_metric": "logloss"}, dtrain=train,
                           num_boost_round=4, evals=[(train, "training"), (valid, "validation")],
                           evals_result=history, verbose_eval=False)
    assert list(history) == ["validation"] and len(history["validation"]["logloss"]) == 4
    assert booster.num_boosted_rounds() == 4


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


FIT = {"model": {"num_workers": 2, "n_estimators": 30, "early_stopping_rounds": 5,
                 "params": {"max_depth": 3, "learning_rate": 0.3}}}


@pytest.fixture(scope="module")
def fit_set(spark: SparkSession) -> TrainingSet:
    return synthetic(spark, rows=4000, positive_rate_logit=-3.0)


def _trees(result) -> list[str]:
    return result.model.get_booster().get_dump(dump_format="json", with_stats=True)


@pytest.mark.parametrize("worker_data", ["spark", "files"])
def test_a_stock_path_fit_predicts_as_well_and_fits_the_borrowed_paths_booster(
        fit_set: TrainingSet, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        worker_data: str) -> None:
    cfg = TrainingConfig.model_validate({**FIT, "model": {**FIT["model"], "worker_data": worker_data}})
    started = time.monotonic()
    borrowed = train_model(fit_set, cfg)
    borrowed_seconds = time.monotonic() - started

    monkeypatch.setenv(SWITCH_ENV, "off")
    with caplog.at_level(logging.INFO, logger="lakeboost"):
        started = time.monotonic()
        stock = train_model(fit_set, cfg)
        stock_seconds = time.monotonic() - started
    print(f"\nworker_data={worker_data}: borrowed path {borrowed_seconds:.1f}s (fit {borrowed.seconds:.1f}s), "
          f"stock path {stock_seconds:.1f}s (fit {stock.seconds:.1f}s)")

    assert "xgboost fit: stock path (LAKEBOOST_BORROWED=off)" in [r.getMessage() for r in caplog.records]
    # The stock fit's own marks: it watched every training row, and recorded no phases. The borrowed
    # one watched a sample of at most train_curve_rows (2,000) per worker: here all of a worker's ~1,300,
    # so its training curve is the stock one (a plain DMatrix of the rows, not their quantile bins).
    assert stock.fit_phases is None and borrowed.fit_phases is not None
    train_curves = [r.model.training_summary.train_objective_history["aucpr"] for r in (stock, borrowed)]
    assert len(train_curves[0]) == len(borrowed.model.training_summary.validation_objective_history["aucpr"])
    assert train_curves[1] == pytest.approx(train_curves[0], rel=1e-6)
    # A learnable signal (logit 5 x f1): well above chance on the test split, on both paths.
    assert stock.metrics["test"]["roc_auc"] > 0.75
    # The same booster: the same rows, parameters, seeds and threads; only the path differs.
    assert _trees(stock) == _trees(borrowed) and stock.rounds == borrowed.rounds
    # The same metrics; the exact AUCs to the last bits only: with the switch off they come from the
    # public evaluator (tests/borrowed/test_jvm.py), which sums the same areas in another order.
    assert stock.threshold == borrowed.threshold and set(stock.metrics) == set(borrowed.metrics) == {"valid", "test"}
    for split, metrics in stock.metrics.items():
        for name, value in metrics.items():
            expected = borrowed.metrics[split][name]
            assert value == (pytest.approx(expected, rel=1e-12) if name in ("roc_auc", "pr_auc") else expected), name


def test_a_driver_tracker_whose_workers_never_come_is_stopped_and_its_port_closed() -> None:
    # What a cancelled fit leaves: a tracker told 2 workers, 1 of which connected and vanished.
    # xgboost.spark's own tracker thread would wait for them for ever; close() ends it.
    tracker = DriverTracker("127.0.0.1", 2, 0)
    port = int(tracker.worker_args["dmlc_tracker_port"])
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass  # the port listens; a worker that says nothing and goes
    time.sleep(0.5)
    assert tracker.thread.is_alive()  # still waiting for its workers
    started = time.monotonic()
    tracker.close(finished=False)
    assert not tracker.thread.is_alive() and time.monotonic() - started < 3
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def _listens(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


def test_two_threads_fitting_one_estimator_each_stop_their_own_tracker(
        spark: SparkSession, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fit A ends while fit B, on the same estimator in another thread, still trains: A stops its
    own tracker, and B's keeps listening until B ends."""
    fits = estimator(PathChoice(True, "test"), {"features_col": "features", "label_col": "label", "num_workers": 1},
                     classification=False)
    frame = spark.createDataFrame([(Vectors.dense([1.0]), 1.0)], ["features", "label"])
    ports: dict[str, int] = {}
    a_tracked, b_tracked, a_ended = threading.Event(), threading.Event(), threading.Event()

    def xgboost_fit_without_its_job(self: Any, dataset: Any) -> str:
        # xgboost.spark's `_fit` as it calls lakeboost's overrides on the driver, in its order: the
        # input, the tracker, the job's mapInPandas (its pickling releases the globals); no job runs.
        prepared, _ = self._prepare_input(dataset)
        _, args = self._get_tracker_args(dataset.sparkSession)
        prepared.mapInPandas(lambda batches: batches, prepared.schema)
        me = threading.current_thread().name
        ports[me] = int(args["dmlc_tracker_port"])
        if me == "A":  # A's training returns once B's is running
            a_tracked.set()
            assert b_tracked.wait(60)
        else:
            b_tracked.set()
            assert a_ended.wait(60)
        return me

    monkeypatch.setattr(SparkXGBRegressor, "_fit", xgboost_fit_without_its_job)
    models: dict[str, Any] = {}
    a = threading.Thread(target=lambda: models.update(A=fits._fit(frame)), name="A")
    b = threading.Thread(target=lambda: models.update(B=fits._fit(frame)), name="B")
    a.start()
    assert a_tracked.wait(60)
    b.start()
    a.join(60)
    assert models.get("A") == "A" and b.is_alive()
    assert not _listens(ports["A"])  # A's tracker stopped with A
    assert _listens(ports["B"])  # B's still there for B's workers (A stopped it before the fix)
    a_ended.set()
    b.join(60)
    assert models.get("B") == "B" and not _listens(ports["B"])
