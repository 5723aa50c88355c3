"""Durations: both spellings parsed once into a timedelta that keeps how it was written."""

from __future__ import annotations

import copy
import pickle
from datetime import timedelta
from pathlib import Path

import pytest
from lakeboost.config import load_config
from lakeboost.config.durations import Duration, parse_duration, spark_interval
from lakeboost.config.features import FeatureSetConfig
from lakeboost.errors import ConfigError

REPO_CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.mark.parametrize(("text", "expected"), [
    ("90s", timedelta(seconds=90)), ("15m", timedelta(minutes=15)), ("1h", timedelta(hours=1)),
    ("30d", timedelta(days=30)), ("2w", timedelta(days=14)), ("0s", timedelta(0)),
    ("5 seconds", timedelta(seconds=5)), ("1 second", timedelta(seconds=1)), ("10 minutes", timedelta(minutes=10)),
    ("1 Hour", timedelta(hours=1)), ("2 days", timedelta(days=2)), (" 7d ", timedelta(days=7)),
])
def test_both_spellings_parse_to_the_same_timedelta(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["30", "1.5h", "-1d", "5 secs", "1y", "", "d"])
def test_other_text_is_refused_naming_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"must be a whole number and a unit: 90s, 15m, 1h, 30d, 2w \(or Spark's"):
        parse_duration(text)


def test_a_number_is_not_a_duration() -> None:
    with pytest.raises(ValueError, match="duration 30 must be"):
        parse_duration(30)


def test_the_spelling_is_kept_for_names_and_the_recorded_config() -> None:
    features = FeatureSetConfig.model_validate({"groups": {"c": {"entity": "c", "windows": ["24h", "1d"]}}})
    first, second = features.groups["c"].windows
    assert first == second == timedelta(days=1)
    assert (str(first), str(second)) == ("24h", "1d")
    assert features.model_dump(mode="json")["groups"]["c"]["windows"] == ["24h", "1d"]
    assert repr(Duration(7 * 86400)) == "Duration('7d')" and str(Duration(90)) == "90s"


def test_a_duration_survives_pickling_and_copying() -> None:
    duration = parse_duration("24h")
    for copied in (pickle.loads(pickle.dumps(duration)), copy.deepcopy(duration)):
        assert isinstance(copied, Duration) and copied == duration and str(copied) == "24h"


def test_spark_interval_is_in_seconds() -> None:
    assert spark_interval(parse_duration("5s")) == "5 seconds"
    assert spark_interval(parse_duration("2 minutes")) == "120 seconds"


def test_every_duration_key_is_parsed_when_the_config_loads() -> None:
    config = load_config("local", conf_dir=REPO_CONF, environ={})
    assert config.scoring.stream is not None and config.scoring.stream.interval == timedelta(seconds=5)
    assert config.monitor.label_maturity == timedelta(days=30)
    assert config.gold.maintenance.bronze_pii_retention == timedelta(days=90)
    assert config.sources["customers"].timeouts.socket == timedelta(minutes=10)


def test_a_bad_duration_names_file_key_and_the_accepted_forms() -> None:
    with pytest.raises(ConfigError, match=r"--set monitor.label_maturity=30 days please: monitor.label_maturity: "
                                          r"Value error, duration '30 days please' must be a whole number and a unit"):
        load_config("local", ["monitor.label_maturity=30 days please"], conf_dir=REPO_CONF, environ={})
