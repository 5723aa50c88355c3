"""The framework's own tables: one config section (storage.tables) with defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from lakeboost.config import load_config
from lakeboost.config.tables import FrameworkTables
from lakeboost.config.validate import known_tables
from lakeboost.errors import ConfigError
from pydantic import ValidationError

REPO_CONF = Path(__file__).resolve().parents[2] / "conf"


def test_defaults_are_the_tables_lakeboost_always_wrote() -> None:
    assert FrameworkTables().by_key() == {
        "bronze_quarantine": "bronze.quarantine", "silver_quarantine": "silver.quarantine",
        "data_quality": "silver.data_quality", "feature_state": "gold.feature_state",
        "training_set": "gold.training_set"}


def test_renamed_tables_are_the_known_ones_and_the_stream_quarantine_follows() -> None:
    config = load_config("local", ["storage.tables.silver_quarantine=silver.rejected",
                                   "storage.tables.training_set=gold.examples"], conf_dir=REPO_CONF, environ={})
    assert config.storage.tables.silver_quarantine == "silver.rejected"
    assert config.scoring.stream is not None and config.scoring.stream.quarantine_table == "silver.rejected"
    tables = known_tables(config)
    assert {"silver.rejected", "gold.examples"} <= tables
    assert not {"silver.quarantine", "gold.training_set"} & tables


def test_a_stream_quarantine_of_its_own_is_kept() -> None:
    config = load_config("local", ["scoring.stream.quarantine_table=silver.live_rejected"], conf_dir=REPO_CONF,
                         environ={})
    assert config.scoring.stream is not None and config.scoring.stream.quarantine_table == "silver.live_rejected"
    assert config.storage.tables.silver_quarantine == "silver.quarantine"


def test_a_framework_table_that_is_also_an_application_table_names_both_keys() -> None:
    with pytest.raises(ConfigError, match=r"storage.tables.training_set: 'gold.transaction_features' is also the "
                                          r"table of gold.features.transaction_features: rename one of them"):
        load_config("local", ["storage.tables.training_set=gold.transaction_features"], conf_dir=REPO_CONF,
                    environ={})


def test_a_name_that_is_not_a_logical_table_is_refused_at_load() -> None:
    with pytest.raises(ConfigError, match=r"storage.tables.data_quality: Value error, 'quality' is not a logical "
                                          r"table name: expected '<layer>.<table>'"):
        load_config("local", ["storage.tables.data_quality=quality"], conf_dir=REPO_CONF, environ={})


def test_two_framework_tables_cannot_share_a_name() -> None:
    with pytest.raises(ValidationError, match="silver_quarantine and bronze_quarantine both name 'bronze.rejects'"):
        FrameworkTables(bronze_quarantine="bronze.rejects", silver_quarantine="bronze.rejects")
