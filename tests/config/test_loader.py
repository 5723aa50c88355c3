"""Config loading: layers, overrides, env references, and errors that name file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from lakeboost.config import load_config
from lakeboost.errors import ConfigError

REPO_CONF = Path(__file__).resolve().parents[2] / "conf"


def conf_tree(tmp_path: Path, base: str, local: str = "") -> Path:
    (tmp_path / "base").mkdir(parents=True)
    (tmp_path / "local").mkdir()
    (tmp_path / "base" / "main.yml").write_text(base)
    (tmp_path / "local" / "main.yml").write_text(local)
    return tmp_path


def test_repo_config_loads_for_every_environment() -> None:
    for env in ("local", "cluster"):
        config = load_config(env, conf_dir=REPO_CONF, environ={})
        assert config.env == env
        assert set(config.sources) == {"customers", "transactions", "merchants", "chargebacks", "card_events"}


def test_overlay_and_set_override_base_values(tmp_path: Path) -> None:
    conf = conf_tree(tmp_path, "demo: {rows: 100, seed: 1}\nspark: {conf: {a: 1}}",
                     "demo: {rows: 200}\nspark: {conf: {b: true}}")
    config = load_config("local", ["demo.seed=7"], conf_dir=conf, environ={})
    assert (config.demo.rows, config.demo.seed) == (200, 7)
    assert config.spark.conf == {"a": "1", "b": "true"}


def test_env_reference_is_resolved_and_secret_hidden(tmp_path: Path) -> None:
    conf = conf_tree(tmp_path, "sources:\n  c: {format: jdbc, url: 'jdbc:postgresql://h/db', table: t, "
                               "password: '${ENV:PG_PASSWORD}'}")
    config = load_config("local", conf_dir=conf, environ={"PG_PASSWORD": "canary-s3cret"})
    source = config.sources["c"]
    assert source.password.get_secret_value() == "canary-s3cret"
    assert "canary-s3cret" not in repr(config) and "canary-s3cret" not in str(source)


def test_unset_env_var_names_file_key_and_variable(tmp_path: Path) -> None:
    conf = conf_tree(tmp_path, "sources:\n  c: {format: jdbc, url: '${ENV:NO_SUCH_URL}', table: t}")
    with pytest.raises(ConfigError, match=r"base/main.yml: sources.c.url refers to environment variable "
                                          r"NO_SUCH_URL, which is not set"):
        load_config("local", conf_dir=conf, environ={})


def test_wrong_type_names_file_key_and_found_value(tmp_path: Path) -> None:
    conf = conf_tree(tmp_path, "demo: {rows: 100}", "demo: {rows: lots}")
    with pytest.raises(ConfigError, match=r"local/main.yml: demo.rows: Input should be a valid integer.*found 'lots'"):
        load_config("local", conf_dir=conf, environ={})


def test_unknown_source_format_lists_the_allowed_ones(tmp_path: Path) -> None:
    conf = conf_tree(tmp_path, "sources:\n  x: {format: xls, path: a}")
    with pytest.raises(ConfigError, match=r"sources.x.format: Input tag 'xls' .*'csv', 'json', 'parquet', 'jdbc'"):
        load_config("local", conf_dir=conf, environ={})


def test_missing_key_is_reported_as_missing(tmp_path: Path) -> None:
    conf = conf_tree(tmp_path, "sources:\n  t: {format: csv, schema: {a: string}}")
    with pytest.raises(ConfigError, match=r"base/main.yml: sources.t.path: Field required, but it is missing"):
        load_config("local", conf_dir=conf, environ={})


def test_text_source_without_schema_and_unknown_type_are_rejected(tmp_path: Path) -> None:
    conf = conf_tree(tmp_path, "sources:\n  t: {format: csv, path: a}")
    with pytest.raises(ConfigError, match=r"format 'csv' needs a `schema`"):
        load_config("local", conf_dir=conf, environ={})
    conf2 = conf_tree(tmp_path / "two", "sources:\n  t: {format: csv, path: a, schema: {x: numbr}}")
    with pytest.raises(ConfigError, match=r"column 'x': unknown Spark SQL type 'numbr'"):
        load_config("local", conf_dir=conf2, environ={})


def test_typo_in_a_key_is_an_error_not_a_no_op(tmp_path: Path) -> None:
    conf = conf_tree(tmp_path, "demo: {rowz: 5}")
    with pytest.raises(ConfigError, match=r"demo.rowz: Extra inputs are not permitted"):
        load_config("local", conf_dir=conf, environ={})


def test_bad_override_and_unknown_environment(tmp_path: Path) -> None:
    conf = conf_tree(tmp_path, "demo: {rows: 100}")
    with pytest.raises(ConfigError, match=r"expected key.path=value"):
        load_config("local", ["demo.rows"], conf_dir=conf, environ={})
    with pytest.raises(ConfigError, match=r"unknown environment 'prod'.*known environments: \['local'\]"):
        load_config("prod", conf_dir=conf, environ={})
