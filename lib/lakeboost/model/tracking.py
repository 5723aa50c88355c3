"""Where models and runs are kept: the MLflow tracking store and registry the config names.

Embedded default: a SQLite tracking store and registry under the lakehouse root; point
`training.tracking.tracking_uri` at a server or `databricks` to use one.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from lakeboost.config.model import LakeboostConfig


def tracking_uri(config: LakeboostConfig) -> str:
    configured = config.training.tracking.tracking_uri
    if configured:
        return configured
    root = config.storage.root
    if "://" in root:
        raise ValueError("storage.root is remote: set training.tracking.tracking_uri")
    Path(root).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(root).resolve()}/mlflow.db"


# MLflow 3's UI opens an experiment as GenAI (traces, empty panels) unless it is tagged as model
# development; then it opens on the runs, their metrics and charts.
EXPERIMENT_KIND, MODEL_DEVELOPMENT = "mlflow.experimentKind", "custom_model_development"


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
        experiment_id = mlflow.create_experiment(name, artifact_location=artifacts,
                                                 tags={EXPERIMENT_KIND: MODEL_DEVELOPMENT})
    else:
        experiment_id = experiment.experiment_id
        if EXPERIMENT_KIND not in experiment.tags:  # an experiment made before lakeboost tagged it
            MlflowClient().set_experiment_tag(experiment_id, EXPERIMENT_KIND, MODEL_DEVELOPMENT)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id
