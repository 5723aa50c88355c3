"""What applications register: feature functions by name (or module path), resolved for config checks."""

from __future__ import annotations

import pytest
from lakeboost.config import load_config
from lakeboost.errors import ConfigError
from lakeboost.plugins import feature, feature_problem, resolve_feature

from tests.test_steps import REPO_CONF


def test_a_registered_feature_resolves_by_name_and_by_module_path() -> None:
    @feature("test_doubled")
    def doubled(df, *, column: str):
        return df

    assert resolve_feature("test_doubled") is doubled
    assert resolve_feature("card_fraud.features:local_hour").__name__ == "local_hour"
    assert feature_problem("test_doubled") is None


def test_an_unknown_feature_is_named_with_the_registered_ones() -> None:
    load_config("local", conf_dir=REPO_CONF, environ={})  # the demo registers its features
    assert "custom feature 'nope' is not registered; registered: [" in (feature_problem("nope") or "")
    assert "'local_hour'" in (feature_problem("nope") or "")
    with pytest.raises(ConfigError, match=r"custom feature 'card_fraud.features:nope' cannot be imported"):
        resolve_feature("card_fraud.features:nope")
