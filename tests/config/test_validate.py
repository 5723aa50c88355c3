"""Cross-section checks at load: the two label maturities."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from lakeboost.config import load_config
from lakeboost.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
REPO_CONF = REPO / "conf"


def test_the_monitor_waits_as_long_as_the_training_set_when_unset() -> None:
    config = load_config("local", ["gold.training_set.label_maturity=45d"], conf_dir=REPO_CONF, environ={})
    assert config.monitor.label_maturity == timedelta(days=45)


def test_without_a_training_set_maturity_the_monitor_keeps_its_own_or_waits_30_days() -> None:
    config = load_config("local", conf_dir=REPO / "examples" / "bike_rentals" / "conf", environ={})
    assert config.gold.training_set is not None and config.gold.training_set.label_maturity is None
    assert config.monitor.label_maturity == timedelta(hours=1)  # its own, from training.yml
    config = load_config("local", ["monitor.label_maturity=null"], conf_dir=REPO / "examples" / "bike_rentals" / "conf",
                         environ={})
    assert config.monitor.label_maturity == timedelta(days=30)


def test_a_longer_monitor_maturity_is_kept() -> None:
    config = load_config("local", ["monitor.label_maturity=60d"], conf_dir=REPO_CONF, environ={})
    assert config.monitor.label_maturity == timedelta(days=60)


def test_a_monitor_maturity_shorter_than_the_training_sets_names_both_keys() -> None:
    with pytest.raises(ConfigError, match=r"--set monitor.label_maturity=7d: monitor.label_maturity: 7d is shorter "
                                          r"than gold.training_set.label_maturity \(30d\): a window would be judged "
                                          r"before its labels had time to arrive"):
        load_config("local", ["monitor.label_maturity=7d"], conf_dir=REPO_CONF, environ={})


def test_a_key_column_named_as_a_passthrough_feature_is_refused_unless_categorical() -> None:
    passthrough = "gold.features.transaction_features.passthrough=[amount_eur,txn_id]"
    with pytest.raises(ConfigError, match=r"gold.features.transaction_features.passthrough: 'txn_id' is a column of "
                                          r"dataset.key: the training set leaves key columns out of the features"):
        load_config("local", [passthrough], conf_dir=REPO_CONF, environ={})
    config = load_config("local", [passthrough, "gold.training_set.categorical=[channel,txn_id]"],
                         conf_dir=REPO_CONF, environ={})
    assert "txn_id" in config.gold.training_set.categorical
