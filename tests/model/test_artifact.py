"""The model's files round-trip through its MLflow run and the registry: what training logs is
what scoring loads (booster, metadata, the challenger alias), and a missing version is named."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from lakeboost.errors import ModelNotFoundError
from lakeboost.model import CHALLENGER, Model, ModelMeta, load_model
from lakeboost.model.artifact import META_FILE, SPARK_MODEL_PATH, log_model
from lakeboost.model.calibrator import Calibrator
from lakeboost.model.registry import current_alias
from lakeboost.model.tracking import use_tracking
from mlflow.tracking import MlflowClient
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from xgboost.spark import SparkXGBClassifier

from tests.helpers import make_config

DATASET = {"events": "silver.events", "key": ["id"], "event_time": "event_time", "date_column": "event_date",
           "label": {"kind": "value", "column": "label", "expr": "late", "available_at": "event_time"}}


@pytest.fixture(scope="module")
def rows(spark: SparkSession) -> DataFrame:
    """300 rows, the label a noisy threshold of x; one categorical feature."""
    return spark.range(300).select(
        "id", (F.col("id") % 97 / 97.0).alias("x"),
        F.when(F.col("id") % 3 == 0, "a").otherwise("b").alias("country"),
        ((F.col("id") % 97 / 97.0 + (F.col("id") % 7) / 20.0) > 0.6).cast("int").alias("label"))


def test_a_logged_model_loads_by_alias_and_version_and_predicts_the_same(
        spark: SparkSession, rows: DataFrame, tmp_path: Path) -> None:
    config = make_config(tmp_path, training={"tracking": {"registered_model": "artifact_test"}})
    use_tracking(config)
    encodings = {"country": {"a": 1 / 3, "b": 2 / 3}}
    encoded = rows.withColumn("country", F.when(F.col("country") == "a", 1 / 3).otherwise(2 / 3))
    booster = SparkXGBClassifier(features_col=["x", "country"], label_col="label", num_workers=1,
                                 n_estimators=5, max_depth=2).fit(encoded)
    meta = ModelMeta(["x", "country"], encodings, 0.4, "binary:logistic", {"versions": {"gold.t": 3}}, DATASET,
                     Calibrator("platt", {"a": 1.2, "b": -0.3}).to_dict())
    with mlflow.start_run() as run:
        version = log_model(booster, meta, registered_model="artifact_test")
    assert version == 1 and current_alias("artifact_test", CHALLENGER) == 1  # every new version: challenger
    artifacts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id)}
    assert {META_FILE, SPARK_MODEL_PATH} <= artifacts

    by_alias, by_version = load_model("artifact_test", CHALLENGER), load_model("artifact_test", "1")
    assert (by_alias.version, by_alias.run_id, by_alias.meta) == (1, run.info.run_id, meta)
    assert by_version.meta == meta and by_alias.dataset.key == ("id",)
    in_memory = Model("artifact_test", 1, run.info.run_id, booster, meta).predict(rows).orderBy("id").collect()
    assert by_alias.predict(rows).orderBy("id").collect() == in_memory


def test_a_missing_alias_or_version_names_the_registry(tmp_path: Path) -> None:
    use_tracking(make_config(tmp_path, training={"tracking": {"registered_model": "absent"}}))
    with pytest.raises(ModelNotFoundError, match=r"no model 'absent' alias 'champion' in the registry at sqlite"):
        load_model("absent")
    with pytest.raises(ModelNotFoundError, match=r"no model 'absent' version '7'"):
        load_model("absent", "7")
