"""Model.predict, the one prediction path of batch and stream scoring, promotion and monitoring:
inputs checked and encoded, the calibrator and threshold applied, each objective's columns."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from lakeboost.errors import ModelFormatError, ScoringError
from lakeboost.model import SCORED_FEATURES, Model, ModelMeta
from lakeboost.model.calibrator import Calibrator
from pyspark.ml.functions import array_to_vector
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

DATASET = {"events": "silver.events", "key": ["shop", "order"], "event_time": "event_time",
           "date_column": "event_date",
           "label": {"kind": "value", "column": "label", "expr": "late", "available_at": "event_time"}}


class Booster:
    """Stands in for a fitted xgboost.spark model: its output columns from the encoded inputs."""

    def __init__(self, objective: str) -> None:
        self.objective = objective
        self.seen: DataFrame | None = None

    def transform(self, df: DataFrame) -> DataFrame:
        self.seen = df
        p = F.col("amount") / 10 + F.col("country") / 2  # the country arrives encoded
        if self.objective == "binary:logistic":
            return df.withColumn("probability", array_to_vector(F.array(1 - p, p)))
        if self.objective == "multi:softprob":
            probabilities = F.array(p / 2, 1 - p, p / 2)
            return df.withColumn("probability", array_to_vector(probabilities)).withColumn(
                "prediction", F.when(1 - p >= p / 2, 1.0).otherwise(0.0))
        return df.withColumn("prediction", p * 100)


def model(objective: str, *, threshold: float | None = None, calibration: dict | None = None) -> Model:
    meta = ModelMeta(["amount", "country"], {"country": {"FR": 0.6, "None": 0.4}}, threshold, objective,
                     {"versions": {}}, DATASET, calibration)
    return Model("orders", 3, "run-1", Booster(objective), meta)


@pytest.fixture(scope="module")
def rows(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(
        [(1, "A", 2.0, "FR", "x"), (1, "B", 4.0, None, "y"), (2, "C", 1.0, "US", "z")],
        "shop int, order string, amount double, country string, extra string")


def test_binary_scores_apply_the_calibrator_then_the_threshold(rows: DataFrame) -> None:
    platt = Calibrator("platt", {"a": 1.0, "b": 0.0})  # the identity on probabilities
    got = {r.order: r for r in model("binary:logistic", threshold=0.45, calibration=platt.to_dict())
           .predict(rows).collect()}
    # p = amount / 10 + encoded country / 2: unseen US encodes to 0, a null country to its share.
    assert got["A"].score == pytest.approx(0.5) and got["B"].score == pytest.approx(0.6)
    assert got["C"].score == pytest.approx(0.1)
    assert [got[o].predicted_label for o in "ABC"] == [1, 1, 0] and got["A"].threshold == 0.45
    assert list(got["A"].asDict()) == ["shop", "order", "score", "predicted_label", "threshold", "model_name",
                                       "model_version"]
    assert (got["A"].model_name, got["A"].model_version) == ("orders", 3)


def test_binary_without_threshold_cuts_at_one_half_and_keep_names_the_columns(rows: DataFrame) -> None:
    got = model("binary:logistic").predict(rows, keep=("order", "order", "extra")).collect()
    assert [(r.order, r.extra, r.predicted_label, r.threshold) for r in got] == [
        ("A", "x", 1, 0.5), ("B", "y", 1, 0.5), ("C", "z", 0, 0.5)]


def test_scored_features_keep_the_inputs_before_encoding(rows: DataFrame) -> None:
    loaded = model("binary:logistic")
    got = {r.order: r[SCORED_FEATURES] for r in loaded.predict(rows, with_features=True).collect()}
    assert got["B"].asDict() == {"amount": 4.0, "country": None} and got["C"].country == "US"
    assert loaded.model.seen is not None and "extra" not in loaded.model.seen.columns  # the inputs only


def test_multiclass_scores_the_predicted_class_and_regression_the_value(rows: DataFrame) -> None:
    classes = {r.order: r for r in model("multi:softprob").predict(rows).collect()}
    assert classes["A"].probabilities == pytest.approx([0.25, 0.5, 0.25]) and classes["A"].predicted_label == 1
    assert classes["A"].score == pytest.approx(0.5) and classes["A"].threshold is None
    values = {r.order: r for r in model("reg:squarederror").predict(rows).collect()}
    assert values["C"].score == pytest.approx(10.0)
    assert values["C"].predicted_label is None and values["C"].threshold is None


def test_a_missing_feature_is_named_with_what_the_input_has(rows: DataFrame) -> None:
    with pytest.raises(ScoringError, match=r"orders v3 expects features \['amount'\], which the input lacks"):
        model("binary:logistic").predict(rows.drop("amount"))


def test_metadata_round_trips_through_json_with_its_dataset() -> None:
    meta = model("binary:logistic", threshold=0.3).meta
    again = ModelMeta.from_json(meta.to_json())
    assert again == meta and again.dataset_config.key == ("shop", "order")


@dataclasses.dataclass(frozen=True)
class _MetaBeforeLossModels:
    """ModelMeta's fields before the loss model (lakeboost 525d532), read as that version reads them."""

    features: list[str]
    encodings: dict[str, dict[str, float]]
    threshold: float | None
    objective: str
    lineage: dict[str, Any]
    dataset: dict[str, Any]
    calibration: dict[str, Any] | None = None
    categorical_encoding: str = "frequency"


def test_metadata_stays_readable_across_versions_and_a_newer_field_is_named() -> None:
    binary = model("binary:logistic", threshold=0.3).meta
    # A model without a loss model, written now, reads in the lakeboost before loss models
    # (a newer training job beside an older scoring job)...
    assert _MetaBeforeLossModels(**json.loads(binary.to_json())).threshold == 0.3
    # ...and one written then reads now, without a loss model.
    older = json.dumps(dataclasses.asdict(_MetaBeforeLossModels(**json.loads(binary.to_json()))))
    assert ModelMeta.from_json(older) == binary and ModelMeta.from_json(older).loss_model is None
    # A regression model's loss model round-trips.
    regression = dataclasses.replace(binary, objective="reg:squarederror", threshold=None,
                                     loss_model={"inputs": ["amount"], "base": {"abs": 1.0}})
    assert ModelMeta.from_json(regression.to_json()) == regression
    # A field from a newer lakeboost is named, with what to do.
    newer = json.dumps({**json.loads(binary.to_json()), "conformal": {"q": 0.9}})
    with pytest.raises(ModelFormatError, match=r"\['conformal'\].*newer lakeboost: upgrade"):
        ModelMeta.from_json(newer)
