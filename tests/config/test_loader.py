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
    conf = conf_tree(tmp_path, "training: {model: {n_estimators: 100, seed: 1}}\nspark: {conf: {a: 1}}",
                     "training: {model: {n_estimators: 200}}\nspark: {conf: {b: true}}")
    config = load_config("local", ["training.model.seed=7"], conf_dir=conf, environ={})
    assert (config.training.model.n_estimators, config.training.model.seed) == (200, 7)
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
    conf = conf_tree(tmp_path, "training: {model: {n_estimators: 100}}", "training: {model: {n_estimators: lots}}")
    with pytest.raises(ConfigError, match=r"local/main.yml: training.model.n_estimators: Input should be a valid "
                                          r"integer.*found 'lots'"):
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
    conf = conf_tree(tmp_path, "training: {model: {n_estimatorz: 5}}")
    with pytest.raises(ConfigError, match=r"training.model.n_estimatorz: Extra inputs are not permitted"):
        load_config("local", conf_dir=conf, environ={})


def test_bad_override_and_unknown_environment(tmp_path: Path) -> None:
    conf = conf_tree(tmp_path, "training: {model: {n_estimators: 100}}")
    with pytest.raises(ConfigError, match=r"expected key.path=value"):
        load_config("local", ["training.model.n_estimators"], conf_dir=conf, environ={})
    with pytest.raises(ConfigError, match=r"unknown environment 'prod'.*known environments: \['local'\]"):
        load_config("prod", conf_dir=conf, environ={})


def test_an_application_section_is_validated_by_the_applications_model() -> None:
    config = load_config("local", ["demo.rows=300"], conf_dir=REPO_CONF, environ={})
    assert config.section("demo").rows == 300 and config.application.modules == ("card_fraud",)
    with pytest.raises(ConfigError, match=r"--set demo.rows=lots: demo.rows: Input should be a valid integer"):
        load_config("local", ["demo.rows=lots"], conf_dir=REPO_CONF, environ={})


@pytest.mark.parametrize(("override", "message"), [
    ("dataset.events=silver.nowhere", r"--set dataset.events=silver.nowhere: dataset.events: names table "
                                      r"'silver.nowhere', which no configured source, silver table, integration"),
    ("gold.training_set.features=gold.other", r"gold.training_set.features: 'gold.other' is not a configured "
                                              r"feature set"),
    ("scoring.stream.contract=payments", r"scoring.stream.contract: no silver table 'payments'"),
    ("scoring.stream.integration=payments", r"scoring.stream.integration: no integration 'payments'"),
    ("training.promotion.metric=rmse", r"training.promotion.metric: metric 'rmse' does not apply to a binary "
                                       r"objective"),
    ("monitor.metric=pr_aucc", r"monitor.metric: unknown metric 'pr_aucc'"),
    ("scoring.dates=range", r"scoring.dates: range needs scoring.since, scoring.until or both"),
    ("scoring.since=2026-03-01", r"scoring.since / scoring.until apply to `dates: range` only \(dates is 'latest'\)"),
    ("gold.features.transaction_features.custom=[no_such_feature]",
     r"gold.features.transaction_features.custom: custom feature 'no_such_feature' is not registered"),
    ("silver.integrations.transactions_enriched.key=[txn]",
     r"silver.integrations.transactions_enriched.key: key columns \['txn'\] are not columns of silver.transactions"),
])
def test_cross_section_errors_name_the_file_the_key_and_what_was_expected(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("local", [override], conf_dir=REPO_CONF, environ={})


def test_a_presence_label_needs_a_label_maturity_and_a_matching_key_width() -> None:
    with pytest.raises(ConfigError, match=r"gold.training_set.label_maturity: a presence label needs label_maturity"):
        load_config("local", ["gold.training_set.label_maturity=null"], conf_dir=REPO_CONF, environ={})
    with pytest.raises(ConfigError, match=r"dataset.label.key: 2 column\(s\) \['a', 'b'\] for a key of 1"):
        load_config("local", ["dataset.label.key=[a, b]"], conf_dir=REPO_CONF, environ={})


def test_an_application_module_that_does_not_import_is_named(tmp_path: Path) -> None:
    conf = conf_tree(tmp_path, "application: {modules: [no_such_app_module]}")
    with pytest.raises(ConfigError, match=r"application.modules: cannot import 'no_such_app_module'"):
        load_config("local", conf_dir=conf, environ={})


DELIVERIES_CONF = REPO_CONF.parent / "examples" / "deliveries" / "conf"


@pytest.mark.parametrize(("override", "message"), [
    ("gold.features.order_features.passthrough=[weight_kg, delivered_at]",
     r"gold.features.order_features.passthrough: 'delivered_at' is a late-arriving outcome"),
    ("gold.features.order_features.groups.shop.aggs={delay_hours: [mean]}",
     r"gold.features.order_features.groups.shop: 'delay_hours' is a late-arriving outcome: a window over event "
     r"time would count values not yet known"),
    ("gold.features.order_features.outcome_windows.shop_deliveries.aggs={weight_kg: [mean]}",
     r"outcome_windows.shop_deliveries.aggs: \['weight_kg'\] are not late-arriving columns"),
    ("dataset.outcomes.delay_hours=placed_at",
     r"outcome_windows.shop_deliveries.count: its columns become known at different times \(.*\), so "
     r"\"outcomes known in the window\" has no one answer: set `count: false`"),
])
def test_late_arriving_columns_are_only_aggregated_from_when_they_are_known(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("local", [override], conf_dir=DELIVERIES_CONF, environ={"SHOPS_JDBC_URL": "jdbc:sqlite:x"})
    load_config("local", conf_dir=DELIVERIES_CONF, environ={"SHOPS_JDBC_URL": "jdbc:sqlite:x"})  # as shipped: valid
