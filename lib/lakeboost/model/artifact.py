"""The model's files in its MLflow run: the Spark model (batch and stream scoring), the booster
(single-node use, xgboost alone) and the metadata (`lakeboost_model.json`); saved by training,
read back by every step that predicts.

Over Spark Connect xgboost.spark (3.3+) writes and reads the Spark model's files through the
server's session (DataFrame text files, no SparkContext), at the path the client names: the
client's temporary directory must be one the server sees too (a server on the same host, as the
tests' loopback one; on a remote server use a classic session for training and scoring, or the
booster, which MLflow logs from the client). A save the client then cannot find says so.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import mlflow

from lakeboost.errors import EnvironmentSetupError
from lakeboost.model.meta import ModelMeta
from lakeboost.model.registry import register_version

SPARK_MODEL_PATH = "spark-model"
BOOSTER_PATH = "model"
META_FILE = "lakeboost_model.json"


def log_model(model: Any, meta: ModelMeta, *, registered_model: str | None) -> int | None:
    """Log the Spark model (batch scoring), the booster (single-node) and the scoring metadata in
    the active run, and register it as the new challenger.

    Returns the registered model version, or None when not registering.
    """
    with tempfile.TemporaryDirectory() as tmp:
        spark_dir = Path(tmp) / SPARK_MODEL_PATH
        # A fresh directory: no overwrite (pyspark's overwrite check needs the JVM, absent on Connect).
        model.write().save(str(spark_dir))
        if not spark_dir.is_dir():
            raise EnvironmentSetupError(
                f"the Spark model was saved to {spark_dir} by the Spark Connect server, on a file system this "
                "process does not see: log models from a session whose server shares this host's temporary "
                "directory, or train on a classic session")
        mlflow.log_artifacts(str(spark_dir), SPARK_MODEL_PATH)
    mlflow.log_text(meta.to_json(), META_FILE)
    # The booster needs xgboost alone, at the version that trained it. Named here: left to MLflow,
    # it imports the model in a subprocess to find out (2 s of every training run).
    info = mlflow.xgboost.log_model(model.get_booster(), name=BOOSTER_PATH,
                                    pip_requirements=mlflow.xgboost.get_default_pip_requirements())
    if not registered_model:
        return None
    run = mlflow.active_run()
    assert run is not None  # log_model is called inside the training run
    return register_version(info.model_uri, registered_model, run_id=run.info.run_id)


def load_artifacts(run_id: str) -> tuple[Any, ModelMeta]:
    """The Spark model and the metadata logged in run `run_id`."""
    with tempfile.TemporaryDirectory() as tmp:
        meta_path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=META_FILE, dst_path=tmp)
        meta = ModelMeta.from_json(Path(meta_path).read_text())
        model_dir = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=SPARK_MODEL_PATH,
                                                        dst_path=tmp)
        model = _model_class(meta.objective).load(model_dir)
    return model, meta


def _model_class(objective: str):
    from xgboost.spark import SparkXGBClassifierModel, SparkXGBRegressorModel

    return SparkXGBClassifierModel if objective.startswith(("binary:", "multi:")) else SparkXGBRegressorModel
