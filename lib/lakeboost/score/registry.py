"""The model registry: load a registered model by alias or version, move aliases, keep history.

Aliases: `challenger` (newly trained), `champion` (used for scoring). The registered model's
tag `champion_history` lists champion versions in order, which is what rollback walks back.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from lakeboost.config.dataset import DatasetConfig
from lakeboost.errors import ModelNotFoundError
from lakeboost.train.tracking import META_FILE, SPARK_MODEL_PATH, ModelMeta

log = logging.getLogger(__name__)
CHAMPION, CHALLENGER = "champion", "challenger"
HISTORY_TAG = "champion_history"


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: int
    run_id: str
    model: Any  # SparkXGBClassifierModel / SparkXGBRegressorModel
    meta: ModelMeta

    @property
    def dataset(self) -> DatasetConfig:
        """The dataset description the model was trained with (its key, times and label)."""
        return DatasetConfig.model_validate(self.meta.dataset)


def resolve_version(name: str, ref: str) -> int:
    """`ref` is an alias (champion) or a version number. Raises ModelNotFoundError."""
    client = MlflowClient()
    try:
        if ref.isdigit():
            return int(client.get_model_version(name, ref).version)
        return int(client.get_model_version_by_alias(name, ref).version)
    except MlflowException as exc:
        raise ModelNotFoundError(
            f"no model {name!r} {'version' if ref.isdigit() else 'alias'} {ref!r} in the registry at "
            f"{mlflow.get_registry_uri()}: {str(exc).splitlines()[0]}. Train one first (jobs/train.py)") from None


def load_model(name: str, ref: str = CHAMPION) -> LoadedModel:
    """The Spark model and scoring metadata of a registered version."""
    version = resolve_version(name, ref)
    run_id = MlflowClient().get_model_version(name, str(version)).run_id
    if run_id is None:
        raise ModelNotFoundError(f"model {name!r} version {version} has no MLflow run: lakeboost registers "
                                 "models from runs (their artifacts hold the scoring metadata)")
    with tempfile.TemporaryDirectory() as tmp:
        meta_path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=META_FILE, dst_path=tmp)
        meta = ModelMeta(**json.loads(Path(meta_path).read_text()))
        model_dir = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=SPARK_MODEL_PATH,
                                                        dst_path=tmp)
        model = _model_class(meta.objective).load(model_dir)
    return LoadedModel(name, version, run_id, model, meta)


def _model_class(objective: str):
    from xgboost.spark import SparkXGBClassifierModel, SparkXGBRegressorModel

    return SparkXGBClassifierModel if objective.startswith(("binary:", "multi:")) else SparkXGBRegressorModel


def champion_history(name: str) -> list[int]:
    tags = MlflowClient().get_registered_model(name).tags
    return [int(v) for v in tags.get(HISTORY_TAG, "").split(",") if v]


def set_alias(name: str, alias: str, version: int) -> None:
    client = MlflowClient()
    client.set_registered_model_alias(name, alias, str(version))
    if alias == CHAMPION:
        history = champion_history(name)
        if not history or history[-1] != version:
            client.set_registered_model_tag(name, HISTORY_TAG, ",".join(map(str, [*history, version])))
    log.info("registry: %s@%s -> version %d", name, alias, version)


def current_alias(name: str, alias: str) -> int | None:
    try:
        return int(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None
