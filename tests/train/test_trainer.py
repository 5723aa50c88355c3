"""Distributed xgboost.spark training on seeded data: quality floor, imbalance, objectives."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pytest
from lakeboost.config.training import TrainingConfig
from lakeboost.features.training_set import TrainingSet
from lakeboost.metrics.binary import binary_metrics
from lakeboost.model import Model, ModelMeta
from lakeboost.train.trainer import train_model
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from tests.train.conftest import SYNTHETIC_DATASET, synthetic, uniform

FAST = {"model": {"num_workers": 2, "n_estimators": 60, "early_stopping_rounds": 10,
                  "params": {"max_depth": 3, "learning_rate": 0.2}}}


def test_binary_model_beats_the_trivial_baseline_with_early_stopping(binary_set: TrainingSet) -> None:
    result = train_model(binary_set, TrainingConfig.model_validate(FAST))

    test = result.metrics["test"]
    # The planted signal (one feature with a 5-logit range) allows ~0.8; a constant scores 0.5.
    assert test["roc_auc"] > 0.72
    assert test["pr_auc"] > 2 * test["base_rate"]
    assert 1 <= result.rounds <= 60
    train_counts = result.split_counts["train"]
    assert result.params["scale_pos_weight"] == train_counts[0] / train_counts[1]
    assert 0 < result.threshold < 1
    assert set(result.metrics) == {"valid", "test"}
    # Workers watched the validation rows and a fixed sample of the training rows (the training
    # curve, `train_curve_rows`), not every training row every round as xgboost.spark alone does.
    summary = result.model.training_summary
    history = summary.validation_objective_history["aucpr"]
    assert len(summary.train_objective_history["aucpr"]) == len(history)
    booster = result.model.get_booster()
    assert len(history) == booster.num_boosted_rounds() and result.rounds == int(booster.attr("best_iteration")) + 1
    assert len(history) == 60 or len(history) == result.rounds + 10  # early stopping's patience: 10 rounds
    assert _trained_threads(result) == 1  # two workers share local[2]'s two slots


def _trained_threads(result) -> int:
    """The nthread the workers' booster trained with (its saved config)."""
    return int(json.loads(result.model.get_booster().save_config())["learner"]["generic_param"]["nthread"])


def _loaded(result, training: TrainingSet, objective: str) -> Model:
    meta = ModelMeta(result.features, {}, result.threshold, objective, training.lineage(),
                     training.dataset.model_dump(mode="json"))
    return Model("synthetic", 1, "run", result.model, meta)


def test_regression_and_multiclass_train_evaluate_and_score_their_own_way(spark: SparkSession) -> None:
    regression_set = synthetic(spark, rows=3000, kind="regression")
    # One worker on the local[2] session: it trains with both cores (two workers get one each).
    regression = train_model(regression_set, TrainingConfig.model_validate(
        {**FAST, "model": {**FAST["model"], "objective": "reg:squarederror", "num_workers": 1}}))
    assert regression.metrics["test"]["r2"] > 0.8
    assert _trained_threads(regression) == 2

    multiclass_set = synthetic(spark, rows=3000, kind="multiclass")
    multiclass = train_model(multiclass_set, TrainingConfig.model_validate(
        {**FAST, "model": {**FAST["model"], "objective": "multi:softprob"}}))
    assert multiclass.metrics["test"]["accuracy"] > 0.7
    assert multiclass.metrics["test"]["macro_f1"] > 0.6

    # Scoring: a regression stores its value and no threshold; multiclass its class probabilities,
    # the predicted class and that class's probability (no placeholder threshold either).
    rows = regression_set.df.limit(200).withColumn("channel", F.lit(0.5))  # encoded as training did
    values = _loaded(regression, regression_set, "reg:squarederror").predict(rows).collect()
    assert all(r.threshold is None and r.predicted_label is None and 0 < r.score < 14 for r in values)
    rows = multiclass_set.df.limit(200).withColumn("channel", F.lit(0.5))
    classes = _loaded(multiclass, multiclass_set, "multi:softprob").predict(rows).collect()
    assert all(r.threshold is None and len(r.probabilities) == 3 and abs(sum(r.probabilities) - 1) < 1e-5
               and r.score == max(r.probabilities) and r.probabilities.index(r.score) == r.predicted_label
               for r in classes)
    assert {r.predicted_label for r in classes} == {0, 1, 2}


def test_workers_reading_files_train_the_model_xgboost_sparks_stream_trains(binary_set: TrainingSet) -> None:
    """The rows handed over as files (the local default) and through xgboost.spark's Arrow stream
    (a cluster's default without a shared directory) give the same trees: same rows, same order."""
    from_files = train_model(binary_set, TrainingConfig.model_validate(FAST))
    streamed = train_model(binary_set, TrainingConfig.model_validate(
        {**FAST, "model": {**FAST["model"], "worker_data": "spark"}}))
    assert streamed.metrics["test"]["roc_auc"] > 0.72
    assert from_files.fit_phases is not None and streamed.fit_phases is not None
    assert from_files.model.get_booster().get_dump() == streamed.model.get_booster().get_dump()
    assert from_files.metrics["test"] == streamed.metrics["test"]


def test_binary_scores_are_calibrated_probabilities_and_scoring_applies_the_calibrator(
        binary_set: TrainingSet) -> None:
    # A balanced class weight pushes raw scores towards 0.5 at a base rate of a few percent.
    result = train_model(binary_set, TrainingConfig.model_validate(FAST))
    test = result.metrics["test"]
    assert result.calibrator is not None and result.calibrator.method == "platt"
    assert test["brier"] < test["raw_brier"] and test["ece"] < test["raw_ece"]
    observed, mean_score = result.predictions["test"].agg(F.avg("_label"), F.avg("score")).first()
    assert abs(mean_score - observed) < 0.03, (mean_score, observed)
    raw_auc = binary_metrics(result.predictions["test"], threshold=0.5, score="raw_score")["roc_auc"]
    assert test["roc_auc"] == pytest.approx(raw_auc, abs=1e-9)  # Platt keeps the ranking

    meta = ModelMeta(result.features, {}, result.threshold, "binary:logistic", binary_set.lineage(),
                     binary_set.dataset.model_dump(mode="json"), result.calibrator.to_dict())
    rows = binary_set.df.limit(300).withColumn("channel", F.lit(0.5))
    scored = Model("synthetic", 1, "run", result.model, meta).predict(rows)
    raw = _loaded(result, binary_set, "binary:logistic").predict(rows)  # the same model, no calibrator
    pairs = scored.alias("c").join(raw.alias("r"), "txn_id").select("c.score", "r.score", "c.predicted_label")
    a, b = result.calibrator.params["a"], result.calibrator.params["b"]
    for calibrated, uncalibrated, predicted in pairs.collect():
        z = a * np.log(uncalibrated / (1 - uncalibrated)) + b
        assert calibrated == pytest.approx(1 / (1 + np.exp(-z)), abs=1e-9)
        assert predicted == int(calibrated >= result.threshold)


def test_native_categoricals_tell_apart_categories_that_frequency_encoding_merges(spark: SparkSession) -> None:
    # Four shops of exactly equal frequency in every day (so in every split cut at midnight); two
    # carry most positives. By frequency all four are one value; by native code, four.
    df = spark.range(28 * 144).select(
        F.format_string("T%06d", F.col("id")).alias("txn_id"),
        F.timestamp_seconds(F.lit(1_767_225_600) + F.col("id") * 600).alias("event_time"),
        F.element_at(F.array(*[F.lit(s) for s in "ABCD"]), (F.col("id") % 4 + 1).cast("int")).alias("shop"),
        uniform("f1").alias("f1"), uniform("noise").alias("noise"))
    df = df.withColumn("label", (F.col("noise") < F.when(F.col("shop").isin("B", "D"), 0.3).otherwise(0.03))
                       .cast("int"))
    frequency_set = TrainingSet(df, {"gold.synthetic": 0}, dt.datetime(2026, 2, 1), ("f1", "shop"), ("shop",),
                                SYNTHETIC_DATASET)
    native_set = dataclasses.replace(frequency_set, categorical_encoding="native")
    cfg = TrainingConfig.model_validate({**FAST, "split": {"valid_from": "2026-01-18", "test_from": "2026-01-23"}})

    by_frequency, native = train_model(frequency_set, cfg), train_model(native_set, cfg)

    assert set(by_frequency.encodings["shop"].values()) == {0.25}  # one value for four shops
    assert sorted(native.encodings["shop"].values()) == [0.0, 1.0, 2.0, 3.0]
    # The best any model can do here is 0.745 (the two rates alone); f1 is noise.
    assert by_frequency.metrics["test"]["roc_auc"] < 0.6 < 0.68 < native.metrics["test"]["roc_auc"]
    assert native.model.get_booster().feature_types == ["q", "c"]  # xgboost split on categories
    # Scored through the stored model: the codes applied again, a shop unseen in training scored
    # as missing (not as one of the codes), the risky shops above the others.
    meta = ModelMeta(native.features, native.encodings, native.threshold, "binary:logistic", native_set.lineage(),
                     SYNTHETIC_DATASET.model_dump(mode="json"), None, "native")
    rows = df.filter(F.col("txn_id") < "T000400").withColumn(
        "shop", F.when(F.col("txn_id") == "T000000", "Z").otherwise(F.col("shop")))
    scored = Model("synthetic", 1, "run", native.model, meta).predict(rows).join(rows.select("txn_id", "shop"),
                                                                                  "txn_id").toPandas()
    assert len(scored) == 400 and scored["score"].notna().all()
    by_shop = scored.groupby("shop")["score"].mean()
    assert min(by_shop["B"], by_shop["D"]) > 2 * max(by_shop["A"], by_shop["C"])
