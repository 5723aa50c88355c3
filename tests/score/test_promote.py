"""Rollback of the champion alias, against a real MLflow registry (SQLite, as the local default)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from lakeboost.config.model import LakeboostConfig
from lakeboost.errors import ModelNotFoundError
from lakeboost.score.promote import rollback
from lakeboost.score.registry import CHAMPION, HISTORY_TAG, champion_history, current_alias, set_alias
from lakeboost.train.tracking import use_tracking
from mlflow.tracking import MlflowClient

from tests.helpers import make_config


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One lakehouse root (one MLflow store) for the module: each test registers its own model."""
    return tmp_path_factory.mktemp("registry")


def _registered(root: Path, name: str, versions: int) -> LakeboostConfig:
    """A config whose registry holds `name` with `versions` versions (no champion yet)."""
    config = make_config(root, training={"tracking": {"registered_model": name}})
    use_tracking(config)
    client = MlflowClient()
    client.create_registered_model(name)
    for version in range(1, versions + 1):
        source = root / "models" / name / str(version)
        source.mkdir(parents=True)
        client.create_model_version(name, source=source.as_uri())
    return config


def _rollback_runs(config: LakeboostConfig) -> list[tuple[str, str, str]]:
    use_tracking(config)
    name = config.training.tracking.registered_model
    runs = mlflow.search_runs(filter_string=f"tags.mlflow.runName = 'rollback' and tags.model = '{name}'",
                              output_format="list",
                              order_by=["attributes.start_time ASC"])
    return [(r.data.tags["from_version"], r.data.tags["to_version"], r.data.tags["reason"]) for r in runs]


def test_rollback_after_the_alias_was_moved_outside_lakeboost_returns_to_the_champion_before_it(
        registry: Path) -> None:
    name = "rollback_outside"
    config = _registered(registry, name, versions=3)
    set_alias(name, CHAMPION, 1)
    set_alias(name, CHAMPION, 2)  # lakeboost's record: 1, then 2
    MlflowClient().set_registered_model_alias(name, CHAMPION, "3")  # by hand, outside lakeboost

    first = rollback(config, reason="v3 misbehaves")

    # Version 3 served, so it is what is rolled back from; 2 was the champion before it.
    assert (first.details["from_version"], first.details["to_version"]) == (3, 2)
    assert current_alias(name, CHAMPION) == 2 and champion_history(name) == [1, 2]
    second = rollback(config, reason="v2 too")
    assert (second.details["from_version"], second.details["to_version"]) == (2, 1)
    assert current_alias(name, CHAMPION) == 1 and champion_history(name) == [1]
    with pytest.raises(ModelNotFoundError, match=r"model 'rollback_outside' has no previous champion .*\[1\]"):
        rollback(config, reason="nothing before v1")
    assert current_alias(name, CHAMPION) == 1
    assert _rollback_runs(config) == [("3", "2", "v3 misbehaves"), ("2", "1", "v2 too")]


def test_rollback_after_the_alias_was_moved_back_by_hand_undoes_that_move(registry: Path) -> None:
    name = "rollback_moved_back"
    config = _registered(registry, name, versions=2)
    set_alias(name, CHAMPION, 1)
    set_alias(name, CHAMPION, 2)
    MlflowClient().set_registered_model_alias(name, CHAMPION, "1")  # a rollback done by hand

    rolled = rollback(config, reason="undo the manual move")

    assert (rolled.details["from_version"], rolled.details["to_version"]) == (1, 2)
    assert current_alias(name, CHAMPION) == 2 and champion_history(name) == [1, 2]


def test_rollback_without_a_champion_alias_is_refused_and_changes_nothing(registry: Path) -> None:
    name = "rollback_no_alias"
    config = _registered(registry, name, versions=2)
    set_alias(name, CHAMPION, 1)
    set_alias(name, CHAMPION, 2)
    MlflowClient().delete_registered_model_alias(name, CHAMPION)

    with pytest.raises(ModelNotFoundError,
                       match=r"model 'rollback_no_alias' has no 'champion' alias to roll back \(recorded champions: "
                             r"\[1, 2\]\); set one with the promote step"):
        rollback(config, reason="no champion")

    assert current_alias(name, CHAMPION) is None
    assert MlflowClient().get_registered_model(name).tags[HISTORY_TAG] == "1,2"
    assert _rollback_runs(config) == []
