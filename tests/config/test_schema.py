"""The config's JSON Schema: up to date, and true to what the loader accepts."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml
from lakeboost.config.loader import merged_document
from lakeboost.config.schema import json_schema, render

REPO = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO / "conf" / "lakeboost.schema.json"
APPLICATIONS = [REPO / "conf", REPO / "examples" / "bike_rentals" / "conf", REPO / "examples" / "deliveries" / "conf"]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_checked_in_schema_is_up_to_date() -> None:
    assert SCHEMA_FILE.read_text() == render(), \
        "conf/lakeboost.schema.json is stale: python -m lakeboost.config.schema > conf/lakeboost.schema.json"


@pytest.mark.parametrize("conf_dir", APPLICATIONS, ids=lambda p: p.parent.name if p.name == "conf" else p.name)
def test_each_application_config_validates(validator: jsonschema.Draft202012Validator, conf_dir: Path) -> None:
    document = merged_document("local", conf_dir=conf_dir, environ={})
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []


def test_application_sections_are_allowed_as_objects(validator: jsonschema.Draft202012Validator) -> None:
    document = merged_document("local", conf_dir=REPO / "conf", environ={})
    assert isinstance(document["demo"], dict) and validator.is_valid(document)
    assert not validator.is_valid({**document, "demo": 42})


def _error_at(validator: jsonschema.Draft202012Validator, document: dict) -> tuple[str, str]:
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    return ".".join(map(str, error.absolute_path)), error.message


def test_broken_config_fails_naming_the_key(validator: jsonschema.Draft202012Validator) -> None:
    document = merged_document("local", conf_dir=REPO / "conf", environ={})
    wrong_type = copy.deepcopy(document)
    wrong_type["training"]["model"]["n_estimators"] = "lots"
    assert _error_at(validator, wrong_type) == ("training.model.n_estimators", "'lots' is not of type 'integer'")
    typo = copy.deepcopy(document)
    typo["gold"]["training_set"]["label_maturty"] = "30d"
    path, message = _error_at(validator, typo)
    assert path == "gold.training_set" and "'label_maturty' was unexpected" in message
    bad_format = copy.deepcopy(document)
    bad_format["sources"]["transactions"]["format"] = "xml"
    assert _error_at(validator, bad_format)[0] == "sources.transactions"


def test_each_base_file_names_the_schema_and_validates_alone(validator: jsonschema.Draft202012Validator) -> None:
    """Editors check one file at a time: every base file carries the language server's comment,
    pointing at the checked-in schema, and holds whole sections, so it validates on its own."""
    files = [file for conf in APPLICATIONS for file in sorted((conf / "base").glob("*.yml"))]
    assert len(files) >= 18
    for file in files:
        first, _, text = file.read_text().partition("\n")
        assert first.startswith("# yaml-language-server: $schema="), file
        assert (file.parent / first.split("=", 1)[1]).resolve() == SCHEMA_FILE, file
        errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in validator.iter_errors(yaml.safe_load(text) or {})]
        assert errors == [], file


def test_fields_carry_their_model_comments_as_descriptions() -> None:
    definitions = json_schema()["$defs"]
    interval = definitions["StreamScoringConfig"]["properties"]["interval"]["description"]
    assert interval.startswith("between micro-batches (--continuous). A duration: a whole number and a unit")
    assert "gold.training_set.label_maturity" in definitions["MonitorConfig"]["properties"]["label_maturity"][
        "description"]
    assert definitions["FrameworkTables"]["properties"]["data_quality"]["description"].startswith(
        "Each refine run's pass/fail counts")
