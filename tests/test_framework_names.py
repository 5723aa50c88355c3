"""The framework names no table or column of any dataset: the demo's are its config's, not lib's.

Every table and column the demo's configuration names (sources, their schemas, silver tables
and columns, integrations, the dataset description, features) is collected from the config
itself, so a new demo column is covered without editing this test. A string literal in
lib/lakeboost that equals one of them, or contains it as a word, fails the test with the
file and line. Docstrings and comments may mention the demo as an example.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from lakeboost.config import load_config

REPO = Path(__file__).resolve().parents[1]
FRAMEWORK = REPO / "lib" / "lakeboost"
# Words that are also the framework's own vocabulary, each for a stated reason: "name" is a
# merchant column in the demo but also MLflow's and pydantic's key for names; "valid_from" is a
# demo column and the framework's own split setting (training.split.valid_from).
GENERIC = {"name", "valid_from"}


def demo_names() -> set[str]:
    config = load_config("local", conf_dir=REPO / "conf", environ={})
    names: set[str] = set()
    for source_name, source in config.sources.items():
        names.add(source_name)
        names |= set(getattr(source, "declared_schema", None) or {})
    for table_name, table in config.silver.tables.items():
        names |= {table_name, *table.columns}
    for integration_name, integration in config.silver.integrations.items():
        names |= {integration_name, *integration.key, *integration.derived}
        for join in [*integration.as_of, *integration.lookups]:
            names |= {*join.keys, *join.keys.values(), *join.columns, *join.columns.values()}
    dataset = config.dataset
    assert dataset is not None
    names |= {*dataset.key, dataset.event_time, dataset.date_column, dataset.label_column}
    for feature_set_name, features in config.gold.features.items():
        names |= {feature_set_name, *features.passthrough, *features.entities()}
    names.add(config.training.tracking.registered_model)
    stream = config.scoring.stream
    assert stream is not None
    names |= {t.split(".", 1)[1] for t in (stream.source, stream.events_table)}
    return {n for n in names if n not in GENERIC}


def literal_hits(root: Path, names: set[str]) -> list[str]:
    """`file:line: 'name'` for every non-docstring string literal naming one of `names`.

    A literal names a column when it is the name (`"label"`), or, for names with an
    underscore (which prose never has), when it contains it as a word, e.g. in SQL
    (`"txn_id IS NOT NULL"`) or an f-string. A dotted config key (`dataset.event_time`) is the
    framework's own vocabulary, not a column, and does not count.
    """
    compound = sorted((n for n in names if "_" in n), key=len, reverse=True)
    pattern = re.compile(r"(?<![A-Za-z0-9_.])(" + "|".join(map(re.escape, compound)) + r")(?![A-Za-z0-9_])")
    hits = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.body and isinstance(node.body[0], ast.Expr)
                      and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                found = [node.value] if node.value in names else [m.group(1) for m in pattern.finditer(node.value)]
                hits += [f"{path.relative_to(root)}:{node.lineno}: {name!r}" for name in found]
    return hits


def test_the_demo_config_names_the_tables_and_columns_this_test_looks_for() -> None:
    names = demo_names()
    assert {"transactions", "customers", "merchants", "chargebacks", "card_events", "txn_id", "customer_id",
            "merchant_id", "amount", "currency", "event_time", "event_date", "label", "amount_eur",
            "transactions_enriched", "live_transactions", "lakeboost_fraud"} <= names


def test_the_oracle_finds_a_planted_name(tmp_path: Path) -> None:
    (tmp_path / "x.py").write_text('"""Docstrings may say txn_id."""\nKEY = "txn_id"\nOTHER = f"{1} event_time"\n'
                                   'LABEL = "label"\nPROSE = "a label"\nKEY_PATH = "dataset.event_time"\n')
    assert sorted(h.split(": ", 1)[1] for h in literal_hits(tmp_path, {"txn_id", "event_time", "label"})) == \
        ["'event_time'", "'label'", "'txn_id'"]


def test_no_demo_table_or_column_name_appears_in_the_framework() -> None:
    hits = literal_hits(FRAMEWORK, demo_names())
    assert hits == [], "the framework names the demo's tables/columns:\n" + "\n".join(hits)
