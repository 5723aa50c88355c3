"""Where the config is found and what its relative paths resolve against (lakeboost.config.project)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from lakeboost.config import load_config
from lakeboost.config import project as project_module
from lakeboost.config.project import default_conf_dir, init_project, path_base
from lakeboost.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("cwd", ["notebooks", "lib/lakeboost", "/"])
def test_relative_paths_resolve_against_the_config_directory_whatever_the_working_directory(
        cwd: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO / cwd)
    config = load_config("local", conf_dir=REPO / "conf", environ={})
    data = REPO / "data"
    assert (config.storage.root, config.storage.landing) == (str(data / "lakehouse"), str(data / "landing"))
    assert config.sources["customers"].url == f"jdbc:sqlite:{data / 'landing' / 'customers.db'}"
    assert config.sources["transactions"].path == str(data / "landing" / "transactions")


def test_every_relative_local_path_resolves_and_uris_and_absolute_paths_are_kept(tmp_path: Path) -> None:
    conf = tmp_path / "project" / "conf"
    shutil.copytree(REPO / "conf", conf)
    (tmp_path / "project" / "examples").symlink_to(REPO / "examples")
    relative = load_config("local", ["storage.root=lake", "storage.landing=../landing/./in", "spark.jars_dir=jars",
                                     "training.model.worker_files_dir=~/fit"], conf_dir=conf, environ={})
    assert relative.storage.root == str(conf / "lake")
    assert relative.storage.landing == str(tmp_path / "project" / "landing" / "in")
    assert relative.spark.jars_dir == str(conf / "jars")
    assert relative.training.model.worker_files_dir == str(Path.home() / "fit")
    assert relative.sources["merchants"].path == str(tmp_path / "project" / "landing" / "in" / "merchants")
    kept = load_config("local", ["storage.root=s3a://bucket/lake", "storage.landing=/Volumes/main/files/landing",
                                 "spark.jars_dir=dbfs:/jars"], conf_dir=conf,
                       environ={"CUSTOMERS_JDBC_URL": "jdbc:postgresql://db:5432/crm"})
    assert (kept.storage.root, kept.storage.landing, kept.spark.jars_dir) == (
        "s3a://bucket/lake", "/Volumes/main/files/landing", "dbfs:/jars")
    assert kept.sources["customers"].url == "jdbc:postgresql://db:5432/crm"
    assert kept.sources["merchants"].path == "/Volumes/main/files/landing/merchants"


def test_a_relative_conf_dir_argument_is_relative_to_the_working_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO / "examples")
    config = load_config("local", conf_dir="deliveries/conf", environ={})
    assert config.storage.root == str(REPO / "data" / "deliveries" / "lakehouse")


def test_default_conf_dir_is_the_env_var_else_the_checkouts_conf(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_conf_dir({}) == REPO / "conf"
    assert default_conf_dir({"LAKEBOOST_CONF_DIR": "/etc/lakeboost"}) == Path("/etc/lakeboost")


def test_packaged_config_puts_its_data_under_the_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    packaged = tmp_path / "site-packages" / "lakeboost" / "default_project"
    shutil.copytree(REPO / "conf", packaged / "conf")
    shutil.copytree(REPO / "examples" / "card_fraud", packaged / "examples" / "card_fraud")
    monkeypatch.setattr(project_module, "PACKAGED_PROJECT", packaged.resolve())
    monkeypatch.setattr(sys, "path", list(sys.path))  # the application's python_path goes in here
    home = tmp_path / "home"

    assert path_base(packaged / "conf", {"LAKEBOOST_DATA_HOME": str(home)}) == home / "conf"
    config = load_config("local", conf_dir=packaged / "conf", environ={"LAKEBOOST_DATA_HOME": str(home)})
    assert config.storage.root == str(home / "data" / "lakehouse")
    assert config.sources["customers"].url == f"jdbc:sqlite:{home / 'data' / 'landing' / 'customers.db'}"
    assert str(packaged.resolve() / "examples") in sys.path  # the demo's code still comes from the package
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert path_base(packaged / "conf", {}) == tmp_path / "user" / ".lakeboost" / "conf"


def test_init_writes_the_default_project_which_loads_and_never_overwrites_it(tmp_path: Path) -> None:
    written = init_project(tmp_path / "mine")
    assert written == [tmp_path / "mine" / "conf", tmp_path / "mine" / "examples" / "card_fraud"]
    assert sorted(p.name for p in (tmp_path / "mine" / "conf").iterdir()) == [
        "base", "cluster", "kafka", "lakeboost.schema.json", "local"]
    assert not list((tmp_path / "mine").rglob("__pycache__"))
    config = load_config("local", conf_dir=tmp_path / "mine" / "conf", environ={})
    assert config.storage.root == str(tmp_path / "mine" / "data" / "lakehouse")
    with pytest.raises(ConfigError, match=r"mine/conf already exists; `lakeboost init` never overwrites a config"):
        init_project(tmp_path / "mine")
