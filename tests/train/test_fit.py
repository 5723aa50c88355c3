"""The fit's own rules: worker threads, fit phases, the streamed matrices, a fit retried as a whole."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xgboost
import yaml
from lakeboost.borrowed.xgboost_spark import as_xgboost_spark_builder
from lakeboost.config.training import TrainingConfig
from lakeboost.errors import TrainingError
from lakeboost.features.training_set import TrainingSet
from lakeboost.logs import StepSummary
from lakeboost.runtime import run_job
from lakeboost.train.fit import (
    BOOSTING_ENDED,
    BOOSTING_STARTED,
    build_streamed_matrices,
    fit_phases,
    train_recording_times,
    worker_threads,
)
from lakeboost.train.trainer import train_model
from pyspark.sql import SparkSession
from xgboost.callback import TrainingCallback

from tests.train.conftest import synthetic


def test_worker_threads_share_a_local_machine_and_follow_spark_on_a_cluster() -> None:
    assert worker_threads(None, master="local[8]", task_slots=8, num_workers=2) == 4
    assert worker_threads(None, master="local[2]", task_slots=2, num_workers=4) == 1
    assert worker_threads(None, master="spark://host:7077", task_slots=16, num_workers=4) is None
    assert worker_threads(3, master="spark://host:7077", task_slots=16, num_workers=4) == 3


def test_fit_phases_split_the_wall_time_at_the_workers_boosting_and_leave_no_attribute_behind() -> None:
    rng = np.random.default_rng(1)
    train = xgboost.DMatrix(rng.normal(size=(50, 2)), label=rng.integers(0, 2, 50))
    booster = train_recording_times({"objective": "binary:logistic"}, train, num_boost_round=2)
    began, ended = float(booster.attr(BOOSTING_STARTED)), float(booster.attr(BOOSTING_ENDED))
    assert began <= ended

    model = SimpleNamespace(get_booster=lambda: booster)
    phases = fit_phases(model, started=began - 3.0, ended=ended + 0.5)

    assert phases is not None and phases.before_boosting == pytest.approx(3.0)
    assert phases.boosting == pytest.approx(ended - began) and phases.after_boosting == pytest.approx(0.5)
    assert booster.attr(BOOSTING_STARTED) is None and booster.attr(BOOSTING_ENDED) is None
    assert fit_phases(model, started=0.0, ended=1.0) is None  # nothing recorded: no phases


def test_streamed_rows_get_a_plain_validation_dmatrix_and_a_base_margin_goes_through_xgboost_spark() -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300), "label": rng.integers(0, 2, 300),
                          "validationIndicator": rng.random(300) < 0.3})
    arguments = {"feature_cols": ["a", "b"], "dev_ordinal": None, "use_qdm": True,
                 "kwargs": {"nthread": 1, "missing": np.nan}, "enable_sparse_data_optim": False,
                 "has_validation_col": True}

    build = as_xgboost_spark_builder(build_streamed_matrices)  # as xgboost.spark's workers call it
    train, valid = build(iterator=iter([frame]), **arguments)
    assert isinstance(train, xgboost.QuantileDMatrix) and type(valid) is xgboost.DMatrix
    assert train.num_row() + valid.num_row() == 300

    # A column lakeboost's builder does not read (a base margin) leaves the building to xgboost.spark's.
    train, valid = build(iterator=iter([frame.assign(baseMargin=0.5)]), **arguments)
    assert isinstance(valid, xgboost.QuantileDMatrix)
    np.testing.assert_array_equal(train.get_base_margin(), np.full(train.num_row(), 0.5, dtype=np.float32))


# The retried fit and its clean twin: tiny and quick (a few hundred rows, a few rounds), more
# positives than the shared set so both workers hold both classes in train and validation.
SMALL_FIT = {"model": {"num_workers": 2, "n_estimators": 8, "early_stopping_rounds": None,
                       "params": {"max_depth": 2, "learning_rate": 0.3}}}


@pytest.fixture(scope="module")
def small_set(spark: SparkSession) -> TrainingSet:
    return synthetic(spark, rows=600, positive_rate_logit=-3.5)


def killed_once(marker: Path, partition: int = 0) -> list[TrainingCallback]:
    """An xgboost callback (it travels to the workers with the fit) that kills, by SIGKILL, the
    Python worker running barrier task `partition` when boosting starts, the first time only:
    the worker creates `marker` before dying (local mode: workers see the driver's disk)."""

    class KillOnce(TrainingCallback):
        def before_training(self, model):
            from pyspark import BarrierTaskContext

            if BarrierTaskContext.get().partitionId() == partition:
                try:
                    fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                except FileExistsError:
                    return model  # the retry: this worker already died once
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
            return model

    return [KillOnce()]


def _trees(result) -> list[str]:
    return result.model.get_booster().get_dump(dump_format="json", with_stats=True)


def test_a_fit_whose_worker_dies_once_is_retried_into_the_clean_fits_booster(
        small_set: TrainingSet, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = TrainingConfig.model_validate({**SMALL_FIT, "model": {**SMALL_FIT["model"], "fit_retries": 1}})
    clean = train_model(small_set, cfg, evaluate_test=False)
    marker = tmp_path / "killed"

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lakeboost.train.fit"):
        retried = train_model(small_set, cfg, param_overrides={"callbacks": killed_once(marker)}, evaluate_test=False)

    # The first attempt died in barrier task 0's worker (its pid, not the driver's), and only there.
    assert int(marker.read_text()) != os.getpid()
    failures = [r.getMessage() for r in caplog.records if "xgboost fit attempt" in r.getMessage()]
    assert len(failures) == 1 and failures[0].startswith("xgboost fit attempt 1/2 failed"), failures
    assert _trees(retried) == _trees(clean) and len(_trees(clean)) == 8
    assert retried.metrics == clean.metrics and retried.threshold == clean.threshold


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_without_retries_a_dead_worker_fails_the_job_with_training_errors_exit_code(
        small_set: TrainingSet, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    (conf / "local").mkdir(parents=True)
    (conf / "base").mkdir()
    (conf / "base" / "lakeboost.yml").write_text(yaml.safe_dump(
        {"storage": {"root": str(tmp_path / "lake"), "landing": str(tmp_path / "landing")}, "sources": {},
         "training": SMALL_FIT}))
    marker = tmp_path / "killed"
    seen: list[TrainingConfig] = []

    def body(spark: SparkSession, config, args) -> StepSummary:  # the train job's body, on this training set
        seen.append(config.training)
        train_model(small_set, config.training, param_overrides={"callbacks": killed_once(marker)})
        return StepSummary("train")

    # run_job configures the root logger (its handlers replaced): the job's log is read from its own
    # logger, and the root logger is put back afterwards.
    job_log, records = logging.getLogger("lakeboost.job"), _Records()
    handlers, level = logging.root.handlers[:], logging.root.level
    job_log.addHandler(records)
    try:
        code = run_job("train", "train", body, ["--conf-dir", str(conf), "--set", "training.model.fit_retries=0"])
    finally:
        job_log.removeHandler(records)
        logging.root.handlers[:], logging.root.level = handlers, level

    assert seen[0].model.fit_retries == 0 and marker.exists()
    assert code == TrainingError.exit_code == 10
    errors = [r.getMessage() for r in records.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith("train failed: xgboost fit failed 1 time(s); last error: ")
    assert "barrier" in errors[0], errors  # the cause: the failed barrier stage
