"""The live source's columns against the contract the live events obey (no Spark needed)."""

from __future__ import annotations

import pytest
from lakeboost.errors import ScoringError
from lakeboost.score.stream import missing_live_columns, require_live_columns

from tests.conftest import demo_config


def test_a_live_source_lacking_a_contract_column_is_refused_naming_it(tmp_path) -> None:
    config = demo_config(tmp_path)
    contract = list(config.silver.tables[config.scoring.stream.contract].columns)
    without_device = [c for c in contract if c not in ("device_id", "email")]

    with pytest.raises(ScoringError, match=r"live source bronze.card_events lacks column\(s\) \['device_id'\] of the "
                                           r"contract silver.transactions; .*scoring.stream.absent_columns"):
        require_live_columns(config, without_device)


def test_columns_declared_absent_are_padded_and_nothing_else(tmp_path) -> None:
    config = demo_config(tmp_path)
    contract = list(config.silver.tables[config.scoring.stream.contract].columns)
    live = [c for c in contract if c != "email"]

    require_live_columns(config, live)  # email is declared absent in conf/base/monitor.yml

    assert config.scoring.stream.absent_columns == ("email",)
    assert missing_live_columns(config, live) == ["email"]
