"""MLflow: one run per training (params, metrics, plots, config, code and data versions), the
model logged for Spark batch scoring and as a plain booster, and registered by name.

Embedded default: a SQLite tracking store and registry under the lakehouse root; point
`training.tracking.tracking_uri` at a server or `databricks` to use one.
"""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from lakeboost.config.model import LakeboostConfig

log = logging.getLogger(__name__)
LIBRARIES = ("pyspark", "delta-spark", "xgboost", "hyperopt", "mlflow", "pandas", "numpy", "lakeboost")
SPARK_MODEL_PATH = "spark-model"
BOOSTER_PATH = "model"
META_FILE = "lakeboost_model.json"


@dataclass(frozen=True)
class ModelMeta:
    """What scoring needs besides the booster: features, encodings, threshold, objective, the
    dataset description (key, times, label) the model was trained with, and the calibrator of
    its binary scores (the threshold applies to calibrated scores)."""

    features: list[str]
    encodings: dict[str, dict[str, float]]
    threshold: float | None
    objective: str
    lineage: dict[str, Any]
    dataset: dict[str, Any]
    calibration: dict[str, Any] | None = None  # lakeboost.train.calibrate.Calibrator.to_dict()

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True, default=str)


def tracking_uri(config: LakeboostConfig) -> str:
    configured = config.training.tracking.tracking_uri
    if configured:
        return configured
    root = config.storage.root
    if "://" in root:
        raise ValueError("storage.root is remote: set training.tracking.tracking_uri")
    Path(root).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(root).resolve()}/mlflow.db"


def use_tracking(config: LakeboostConfig) -> str:
    """Point MLflow at the configured store and experiment; returns the experiment id."""
    uri = tracking_uri(config)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    name = config.training.tracking.experiment
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        artifacts = None
        if uri.startswith("sqlite:///"):
            artifacts = (Path(config.storage.root).resolve() / "mlartifacts" / name).as_uri()
        experiment_id = mlflow.create_experiment(name, artifact_location=artifacts)
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def code_version() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def log_config(config: LakeboostConfig) -> None:
    """The config as JSON (secrets are SecretStr: they serialise as '**********')."""
    mlflow.log_dict(config.model_dump(mode="json", by_alias=True), "config.json")


def log_model(model: Any, meta: ModelMeta, *, registered_model: str | None) -> int | None:
    """Log the Spark model (batch scoring), the booster (single-node) and the scoring metadata.

    Returns the registered model version, or None when not registering.
    """
    with tempfile.TemporaryDirectory() as tmp:
        spark_dir = Path(tmp) / SPARK_MODEL_PATH
        model.write().overwrite().save(str(spark_dir))
        mlflow.log_artifacts(str(spark_dir), SPARK_MODEL_PATH)
    mlflow.log_text(meta.to_json(), META_FILE)
    # The booster needs xgboost alone, at the version that trained it. Named here: left to MLflow,
    # it imports the model in a subprocess to find out (2 s of every training run).
    info = mlflow.xgboost.log_model(model.get_booster(), name=BOOSTER_PATH,
                                    pip_requirements=mlflow.xgboost.get_default_pip_requirements())
    if not registered_model:
        return None
    registered = mlflow.register_model(info.model_uri, registered_model)
    client = MlflowClient()
    run = mlflow.active_run()
    assert run is not None  # log_model is called inside the training run
    client.set_model_version_tag(registered_model, registered.version, "run_id", run.info.run_id)
    # Every new version is the challenger; promotion decides whether it becomes champion.
    client.set_registered_model_alias(registered_model, "challenger", registered.version)
    return int(registered.version)


def log_common(config: LakeboostConfig, *, lineage: dict[str, Any]) -> None:
    mlflow.set_tags({"git_commit": code_version(), **{f"lib.{k}": v for k, v in library_versions().items()},
                     **{f"delta.{t}": str(v) for t, v in lineage.get("versions", {}).items()}})
    mlflow.log_dict(lineage, "lineage.json")
    log_config(config)
