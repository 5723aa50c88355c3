"""A regression model's estimated performance in the monitor's records: the loss model stored with
the model (DLE) estimates each window's MAE and RMSE, and a window whose inputs moved where the
errors are larger raises an estimated decay while its labels are pending."""

from __future__ import annotations

import datetime as dt
import json
import logging
from types import SimpleNamespace

import pytest
from lakeboost.config.monitoring import MonitorConfig
from lakeboost.model.meta import ModelMeta
from lakeboost.monitor.measure import _estimated_records
from lakeboost.monitor.profile import Slicer
from lakeboost.train.loss import fit_loss_model
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from tests.monitor.test_estimate import _regression
from tests.monitor.test_measure import WEEKS, _record


def test_a_regression_models_pending_window_whose_errors_grew_raises_an_estimated_decay(spark: SparkSession) -> None:
    validation = _regression(spark, 6000, 1, 0.0, start=WEEKS[0] - dt.timedelta(days=7))
    loss = fit_loss_model(validation, features=["x1", "x2"], label="y", prediction="score", order="event_time")
    # The loss model as training stores it (lakeboost_model.json) and scoring reads it back.
    meta = ModelMeta.from_json(ModelMeta(["x1", "x2"], {}, None, "reg:squarederror", {}, {},
                                         loss_model=json.loads(json.dumps(loss.to_dict()))).to_json())
    champion = SimpleNamespace(dataset=SimpleNamespace(event_time="event_time"), meta=meta)
    # Weeks 1 and 3 as on validation; week 2's rows moved to x2 >= 0.8, where the error's scale is
    # 1.8-2.2 (RMSE ~2.0 against 1.33 on validation).
    current = (_regression(spark, 3000, 5, 0.0, start=WEEKS[0])
               .unionByName(_regression(spark, 3000, 7, 0.8, start=WEEKS[1]))
               .unionByName(_regression(spark, 3000, 9, 0.0, start=WEEKS[2]))
               .withColumn("region", F.when(F.col("x1") < 0.5, "west").otherwise("east"))
               .drop("y"))  # labels not known yet
    bound = loss.validation["rmse"] * 1.25  # decay_bound("rmse", validation RMSE, 0.25)

    records = _estimated_records(current, champion, MonitorConfig(window="week"), _record, bound=bound,
                                 matured={WEEKS[0]}, slices=[Slicer("region", ("west",))], judged_by="rmse",
                                 kind="regression")
    assert {r.kind for r in records} == {"estimated_performance"}
    rmse = {(r.window_start, r.slice): r for r in records if r.metric == "rmse"}
    assert set(rmse) == {(w, s) for w in WEEKS for s in ("all", "region=west", "region=other")}
    assert {r.metric for r in records} == {"mae", "mae_low", "mae_high", "rmse", "rmse_low", "rmse_high"}
    # Judged only while labels are pending (weeks 2 and 3), on all rows: week 2 decayed, week 3 not.
    assert [(w, r.threshold, r.breached) for (w, s), r in sorted(rmse.items()) if s == "all"] == [
        (WEEKS[0], None, False), (WEEKS[1], bound, True), (WEEKS[2], bound, False)]
    shifted = rmse[(WEEKS[1], "all")]
    low = next(r for r in records if r.metric == "rmse_low" and r.window_start == WEEKS[1] and r.slice == "all")
    assert low.value > bound and shifted.status == "pending_labels" and shifted.rows == 3000
    assert shifted.cause.startswith("the loss model fitted on validation")
    assert 1.8 < shifted.value < 2.2 and 1.2 < rmse[(WEEKS[2], "all")].value < 1.45
    # A slice's estimate is shown, never judged.
    assert not any(r.breached or r.threshold is not None for r in records if r.slice != "all")


def test_a_regression_model_without_a_loss_model_has_no_estimate(spark: SparkSession) -> None:
    meta = ModelMeta(["x1", "x2"], {}, None, "reg:squarederror", {}, {})
    champion = SimpleNamespace(dataset=SimpleNamespace(event_time="event_time"), meta=meta)
    current = _regression(spark, 100, 5, 0.0, start=WEEKS[0]).drop("y")
    assert _estimated_records(current, champion, MonitorConfig(window="week"), _record, bound=1.0, matured=set(),
                              slices=(), judged_by="rmse", kind="regression") == []


def test_a_loss_model_whose_inputs_are_not_scored_is_named_not_skipped_in_silence(
        spark: SparkSession, caplog: pytest.LogCaptureFixture) -> None:
    validation = _regression(spark, 2000, 1, 0.0, start=WEEKS[0] - dt.timedelta(days=7))
    loss = fit_loss_model(validation, features=["x1", "x2"], label="y", prediction="score", order="event_time")
    meta = ModelMeta(["x1", "x2"], {}, None, "reg:squarederror", {}, {}, loss_model=loss.to_dict())
    champion = SimpleNamespace(dataset=SimpleNamespace(event_time="event_time"), meta=meta)
    current = _regression(spark, 100, 5, 0.0, start=WEEKS[0]).drop("y", "x2")
    with caplog.at_level(logging.WARNING, logger="lakeboost.monitor.measure"):
        assert _estimated_records(current, champion, MonitorConfig(window="week"), _record, bound=1.0,
                                  matured=set(), slices=(), judged_by="rmse", kind="regression") == []
    assert "inputs ['x2'] are not in the scored inputs" in caplog.text
