"""The model registry: resolve an alias or version, register a version, move aliases, keep history.

Aliases: `challenger` (newly trained), `champion` (used for scoring). The registered model's
tag `champion_history` lists champion versions in order, which is what rollback walks back.
"""

from __future__ import annotations

import logging

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from lakeboost.errors import ModelNotFoundError

log = logging.getLogger(__name__)
CHAMPION, CHALLENGER = "champion", "challenger"
HISTORY_TAG = "champion_history"


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


def run_of(name: str, version: int) -> str:
    """The MLflow run that logged version `version` of `name` (its artifacts hold the model)."""
    run_id = MlflowClient().get_model_version(name, str(version)).run_id
    if run_id is None:
        raise ModelNotFoundError(f"model {name!r} version {version} has no MLflow run: lakeboost registers "
                                 "models from runs (their artifacts hold the scoring metadata)")
    return run_id


def register_version(model_uri: str, name: str, *, run_id: str) -> int:
    """Register `model_uri` under `name`, tagged with its run; the new version becomes the challenger."""
    registered = mlflow.register_model(model_uri, name)
    client = MlflowClient()
    client.set_model_version_tag(name, registered.version, "run_id", run_id)
    # Every new version is the challenger; promotion decides whether it becomes champion.
    client.set_registered_model_alias(name, CHALLENGER, registered.version)
    return int(registered.version)


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
