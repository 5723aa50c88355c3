"""The cheapest proof that nothing is hard-coded: the demo with every table and column renamed.

The demo's landing files (the shared demo lakehouse's) and its config are rewritten by one
mechanical mapping, `name -> r_name`, for every table and column the demo's config names (the
same set tests/test_framework_names.py collects): CSV headers, JSON keys, Parquet columns,
the SQLite table and its columns, landing directories, and every string in the YAML (SQL
expressions, keys, feature names built from column names). The framework's own tables
(`storage.tables`: quarantines, data quality, feature state, training set) become
`<layer>.r_<table>` through the config alone. The whole pipeline then runs on
the renamed data, `score_stream` and `monitor` included, and must give the same row count in
every table and the same test metrics as the original run with the same seeds.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from lakeboost.config import load_config
from lakeboost.config.tables import FrameworkTables
from lakeboost.io import TableCatalog
from lakeboost.model.tracking import use_tracking
from lakeboost.pipeline import run_pipeline, select_steps
from pyspark.sql import SparkSession

from tests.conftest import DEMO_OVERRIDES, DEMO_PII_KEY, REPO
from tests.test_framework_names import demo_names

pytestmark = pytest.mark.e2e
PREFIX = "r_"
# Dict keys that are names of tables, columns or features (everything else is a config field).
NAMED_MAPS = {"sources", "tables", "columns", "schema", "integrations", "aggs", "mask", "zorder", "derived", "features",
              "ratios"}


def renamer(names: set[str]) -> Callable[[str], str]:
    """Prefix every whole name, also inside identifiers built from it (`customer_amount_eur_max_30d`)."""
    alternatives = "|".join(sorted(map(re.escape, names), key=len, reverse=True))
    pattern = re.compile(rf"(?<![A-Za-z0-9])({alternatives})(?![A-Za-z0-9])")
    return lambda text: pattern.sub(lambda m: PREFIX + m.group(1), text)


def rename_config(value: Any, rename: Callable[[str], str], parent: str = "") -> Any:
    if isinstance(value, dict):
        return {(rename(k) if parent in NAMED_MAPS else k): rename_config(v, rename, k) for k, v in value.items()}
    if isinstance(value, list):
        return [rename_config(v, rename, parent) for v in value]
    return rename(value) if isinstance(value, str) else value


def rename_landing(source: Path, target: Path, rename: Callable[[str], str], names: set[str]) -> None:
    """The demo's landing files with renamed directories, headers, keys and columns; values untouched."""
    json_key = re.compile(r'"(' + "|".join(map(re.escape, sorted(names, key=len, reverse=True))) + r')"\s*:')
    for directory in (d for d in source.iterdir() if d.is_dir()):
        out = target / rename(directory.name)
        out.mkdir(parents=True)
        for file in sorted(directory.iterdir()):
            if file.suffix == ".csv":
                header, _, body = file.read_text().partition("\n")
                (out / file.name).write_text(",".join(rename(c) for c in header.split(",")) + "\n" + body)
            elif file.suffix == ".json":
                (out / file.name).write_text(json_key.sub(lambda m: f'"{PREFIX}{m.group(1)}":', file.read_text()))
            elif file.suffix == ".parquet":
                table = pq.read_table(file)
                pq.write_table(table.rename_columns([rename(c) for c in table.column_names]), out / file.name)
            else:
                shutil.copy(file, out / file.name)
    for db in source.glob("*.db"):
        renamed = target / rename(db.name)
        shutil.copy(db, renamed)
        with sqlite3.connect(renamed) as conn:
            for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
                for column in columns:
                    conn.execute(f"ALTER TABLE {table} RENAME COLUMN {column} TO {rename(column)}")
                conn.execute(f"ALTER TABLE {table} RENAME TO {rename(table)}")


def renamed_framework_tables() -> dict[str, str]:
    """The framework's own tables (storage.tables), each renamed `<layer>.r_<table>`."""
    return {table: table.replace(".", f".{PREFIX}", 1) for table in FrameworkTables().by_key().values()}


def write_renamed_conf(target: Path, rename: Callable[[str], str]) -> None:
    for layer in ("base", "local"):
        (target / layer).mkdir(parents=True)
        for file in sorted((REPO / "conf" / layer).glob("*.yml")):
            renamed = rename_config(yaml.safe_load(file.read_text()) or {}, rename)
            (target / layer / file.name).write_text(yaml.safe_dump(renamed, sort_keys=False))


def table_counts(catalog: TableCatalog, versions: dict[str, int]) -> dict[str, int]:
    """Rows per table at the versions a pipeline run ended with (later tests may write more)."""
    return {table: catalog.read(table, version=version).count() for table, version in versions.items()}


def test_renamed_tables_and_columns_give_the_same_counts_and_metrics(
        spark: SparkSession, demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, details = demo
    names = demo_names() | {"name"}  # the merchant's `name` column too: renamed where it is a column
    rename = renamer(names)
    rename_landing(Path(config.storage.landing), tmp_path / "landing", rename, names)
    write_renamed_conf(tmp_path / "conf", rename)
    monkeypatch.setenv("LAKEBOOST_PII_KEY", DEMO_PII_KEY)
    steps = [s for s in config.pipeline.steps or () if s != "generate"]  # the landing data is given
    framework = renamed_framework_tables()
    framework_sets = [f"storage.tables.{key}={framework[table]}" for key, table in FrameworkTables().by_key().items()]
    renamed = load_config(
        "local", [f"storage.root={tmp_path}/lake", f"storage.landing={tmp_path}/landing",
                  f"application.python_path=[{REPO / 'examples'}]", f"pipeline.steps=[{', '.join(steps)}]",
                  *framework_sets, *DEMO_OVERRIDES],
        conf_dir=tmp_path / "conf",
        environ={"CUSTOMERS_JDBC_URL": f"jdbc:sqlite:{tmp_path}/landing/{PREFIX}customers.db"})
    assert renamed.dataset is not None and renamed.dataset.key == (f"{PREFIX}txn_id",)

    try:
        summary = run_pipeline(spark, renamed, select_steps(renamed))
    finally:
        use_tracking(config)  # later tests read the demo's registry

    original = table_counts(TableCatalog(spark, config.storage), details["pipeline_versions"])
    expected = {framework.get(table, rename(table)): n for table, n in original.items()}
    got = table_counts(TableCatalog(spark, renamed.storage), summary.versions)
    assert got == expected
    assert len(got) >= 15 and got[f"gold.{PREFIX}transaction_features"] > 0 and got["gold.stream_predictions"] > 0
    # The framework's own tables landed under their new names only (storage.tables).
    assert f"gold.{PREFIX}training_set" in got and not set(framework) & set(got)
    test_metrics = details["train"]["metrics"]["test"]
    renamed_metrics = summary.details["train"]["metrics"]["test"]
    assert set(renamed_metrics) == set(test_metrics)
    for metric, value in test_metrics.items():
        assert renamed_metrics[metric] == pytest.approx(value, abs=1e-9), metric
    print("renamed-schema run: " + json.dumps({"tables": len(got), "test": renamed_metrics}, default=str))
