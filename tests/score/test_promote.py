"""Promotion and rollback of the champion alias, against a real MLflow registry (SQLite, the local
default), when the alias was also moved outside lakeboost."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from lakeboost.config.model import LakeboostConfig
from lakeboost.errors import ModelNotFoundError
from lakeboost.io import TableCatalog
from lakeboost.model.registry import CHALLENGER, CHAMPION, HISTORY_TAG, champion_history, current_alias, set_alias
from lakeboost.model.tracking import use_tracking
from lakeboost.score import promote
from lakeboost.score.promote import rollback
from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession

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


def test_a_promotion_over_a_champion_set_by_hand_keeps_it_for_the_rollback(
        spark: SparkSession, registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = "promote_over_outside"
    config = _registered(registry, name, versions=4)
    set_alias(name, CHAMPION, 1)
    set_alias(name, CHAMPION, 2)
    MlflowClient().set_registered_model_alias(name, CHAMPION, "3")  # by hand
    set_alias(name, CHALLENGER, 4)
    compared: list[tuple[int, int]] = []

    def challenger_wins(spark, config, champion: int, challenger: int) -> dict[str, dict[str, float]]:
        # The snapshot comparison (a training set rebuilt at its Delta versions) is not what is
        # tested here: the alias moves and the history are, on the real registry.
        compared.append((champion, challenger))
        return {"champion": {"pr_auc": 0.5}, "challenger": {"pr_auc": 0.6}}

    monkeypatch.setattr(promote, "compare_on_snapshot", challenger_wins)
    decision = promote.promote_step(TableCatalog(spark, config.storage), config)

    assert compared == [(3, 4)] and decision.details["promoted"] and current_alias(name, CHAMPION) == 4
    assert champion_history(name) == [1, 2, 3, 4]
    rolled = rollback(config, reason="v4 misbehaves")
    assert (rolled.details["from_version"], rolled.details["to_version"]) == (4, 3)  # not 2
