"""MLflow: what one training run records besides the model (lakeboost.model.artifact logs that):
code and library versions, the Delta versions it read, the lineage and the config."""

from __future__ import annotations

import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow

from lakeboost.config.model import LakeboostConfig

LIBRARIES = ("pyspark", "delta-spark", "xgboost", "hyperopt", "mlflow", "pandas", "numpy", "lakeboost")


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


def log_common(config: LakeboostConfig, *, lineage: dict[str, Any]) -> None:
    mlflow.set_tags({"git_commit": code_version(), **{f"lib.{k}": v for k, v in library_versions().items()},
                     **{f"delta.{t}": str(v) for t, v in lineage.get("versions", {}).items()}})
    mlflow.log_dict(lineage, "lineage.json")
    log_config(config)
