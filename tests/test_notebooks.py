"""The Databricks-source notebooks: their helpers, their format, and a local end-to-end run.

The run executes each notebook as Databricks would, cell by cell in one namespace, in this
process: the suite's session is the active session `build_spark` returns, and widgets read
`LAKEBOOST_<NAME>` environment variables. Order: 02 (runs the pipeline), 01, 03 (with a
2-trial tuning search), 04.
"""

from __future__ import annotations

import builtins
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from lakeboost.errors import ConfigError
from lakeboost.notebook import display_df, parse_overrides, step_widgets, widget
from lakeboost.steps import FRAMEWORK_STEPS
from pyspark.sql import SparkSession

from tests.conftest import DEMO_OVERRIDES, DEMO_PII_KEY, REPO

NOTEBOOKS = REPO / "notebooks"
NOTEBOOK_FILES = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))
HEADER = "# Databricks notebook source"
SEPARATOR = "# COMMAND ----------"
# The README's conversion to Jupyter notebooks (jupytext has no Databricks format: jupytext#926):
# Databricks cell markers become percent-format markers, one Jupyter cell per Databricks cell.
README_CONVERSION = r"""
for nb in notebooks/*.py; do
  perl -0pe 's/\A# Databricks notebook source\n//; s/^# COMMAND -+\n\n(?=# MAGIC %md)//mg;
             s/^# COMMAND -+\n\n?/# %%\n/mg; s/^# MAGIC %md$/# %% [markdown]/mg; s/^# MAGIC ?/# /mg' "$nb" |
    .venv/bin/jupytext --quiet --from py:percent --to ipynb -o "${nb%.py}.ipynb" -
done
"""


def databricks_cells(path: Path) -> list[tuple[str, str]]:
    """(kind, source) per cell, in order; kind is "markdown" for `# MAGIC %md` cells, else "code"."""
    text = path.read_text()
    assert text.startswith(HEADER + "\n"), f"{path.name}: first line must be {HEADER!r}"
    cells = [cell.strip("\n") for cell in text[len(HEADER) + 1:].split(SEPARATOR)]
    return [("markdown" if cell.startswith("# MAGIC %md") else "code", cell) for cell in cells]


def run_notebook(path: Path, run_times: dict[str, float]) -> dict[str, Any]:
    """Execute the code cells in one namespace; a failing cell fails with the notebook and cell number."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    cells = databricks_cells(path)
    started = time.monotonic()
    for number, (kind, source) in enumerate(cells, start=1):
        if kind != "code":
            continue
        try:
            exec(compile(source, f"{path.name} [cell {number}]", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"notebook {path.name}: cell {number} of {len(cells)} failed: "
                                 f"{type(exc).__name__}: {exc}") from exc
    run_times[path.name] = round(time.monotonic() - started, 1)
    print(f"\nnotebook {path.name}: {run_times[path.name]:.1f}s")
    return namespace


# -- lakeboost.notebook ---------------------------------------------------------------------

class FakeWidgets:
    def __init__(self, values: dict[str, str]) -> None:
        self.values, self.created = values, []

    def text(self, name: str, default: str, label: str) -> None:
        self.created.append((name, default, label))

    def get(self, name: str) -> str:
        return self.values[name]


def test_widget_reads_lakeboost_env_var_outside_databricks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    monkeypatch.setenv("LAKEBOOST_TUNE_EVALS", "3")
    assert widget("tune_evals", "0") == "3"
    monkeypatch.delenv("LAKEBOOST_TUNE_EVALS")
    assert widget("tune_evals", "0") == "0"


def test_step_widgets_are_the_steps_options_typed_by_its_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEBOOST_MODEL", "3")
    monkeypatch.setenv("LAKEBOOST_DATE", "2026-01-01, 2026-01-02")
    options = step_widgets("score")
    assert options.model == "3" and [d.isoformat() for d in options.date] == ["2026-01-01", "2026-01-02"]
    monkeypatch.setenv("LAKEBOOST_DATE", "yesterday")
    with pytest.raises(ConfigError, match=r"step 'score': invalid option\(s\): --date: Input should be a valid date"):
        step_widgets("score")
    monkeypatch.delenv("LAKEBOOST_MODEL")
    monkeypatch.delenv("LAKEBOOST_DATE")
    assert step_widgets("score").model == "champion"


def test_widget_creates_and_reads_a_databricks_text_widget(monkeypatch: pytest.MonkeyPatch) -> None:
    widgets = FakeWidgets({"env": "cluster"})
    monkeypatch.setattr(builtins, "dbutils", type("DBUtils", (), {"widgets": widgets})(), raising=False)
    monkeypatch.setenv("LAKEBOOST_ENV", "ignored on Databricks")

    assert widget("env", "local", "config environment") == "cluster"
    assert widgets.created == [("env", "local", "config environment")]


def test_parse_overrides_splits_only_where_a_new_key_starts() -> None:
    assert parse_overrides(" demo.rows=10, training.model.params={max_depth: 4, eta: 0.1},x=a,b ") == [
        "demo.rows=10", "training.model.params={max_depth: 4, eta: 0.1}", "x=a,b"]
    assert parse_overrides("") == []


def test_display_df_prints_the_first_rows_outside_databricks(spark: SparkSession, capsys) -> None:
    display_df(spark.createDataFrame([(i, None if i == 2 else f"r{i}") for i in range(5)], "id int, v string"), n=3)
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["id", "v"] and len(out) == 4 and out[3].split()[1:] == ["2", "None"]


# -- format and conversion ------------------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.name)
def test_notebook_is_databricks_source_starting_with_widgets(path: Path) -> None:
    cells = databricks_cells(path)
    first_code = next(source for kind, source in cells if kind == "code")
    assert 'widget("env", "local"' in first_code and 'widget("overrides", ""' in first_code
    for kind, source in cells:
        assert source.strip(), f"{path.name}: empty cell"
        if kind == "markdown":
            assert all(line.startswith("# MAGIC") for line in source.splitlines())


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: p.name)
def test_jupytext_converts_notebook_to_ipynb_keeping_every_code_line(path: Path) -> None:
    jupytext = pytest.importorskip("jupytext")
    nbformat = pytest.importorskip("nbformat")
    text = path.read_text()

    notebook = nbformat.reads(jupytext.writes(jupytext.reads(text, fmt="py"), fmt="ipynb"), as_version=4)

    nbformat.validate(notebook)
    code_cells = [c.source for c in notebook.cells if c.cell_type == "code"]
    databricks_code = [source for kind, source in databricks_cells(path) if kind == "code"]
    assert len(code_cells) >= len(databricks_code)
    converted = "\n".join(code_cells)
    lost = [line for source in databricks_code for line in source.splitlines()
            if line.strip() and not line.lstrip().startswith("#") and line not in converted]
    assert lost == []


def test_readme_conversion_makes_one_jupyter_cell_per_databricks_cell(tmp_path: Path) -> None:
    jupytext = shutil.which("jupytext", path=str(Path(sys.executable).parent))
    if jupytext is None or shutil.which("perl") is None:
        pytest.skip("needs jupytext in this environment and perl")
    shutil.copytree(NOTEBOOKS, tmp_path / "notebooks", ignore=shutil.ignore_patterns("*.ipynb"))
    subprocess.run(["bash", "-euc", README_CONVERSION.replace(".venv/bin/jupytext", jupytext)],
                   cwd=tmp_path, check=True, capture_output=True, text=True)
    for path in NOTEBOOK_FILES:
        cells = json.loads((tmp_path / "notebooks" / f"{path.stem}.ipynb").read_text())["cells"]
        sources = ["".join(c["source"]) for c in cells]
        assert [c["cell_type"] for c in cells] == [kind for kind, _ in databricks_cells(path)], path.name
        assert not [s for s in sources if "# COMMAND" in s or "MAGIC" in s], path.name
        assert sources[0].startswith("# "), f"{path.name}: the title cell is a markdown heading"


# -- end to end -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run_times() -> dict[str, float]:
    times: dict[str, float] = {}
    yield times
    print("\nnotebook run times: " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in times.items()))


@pytest.fixture(scope="module")
def pipeline_notebook(spark: SparkSession, demo, tmp_path_factory: pytest.TempPathFactory,
                      run_times: dict[str, float]) -> dict[str, Any]:
    """Notebook 02 (the pipeline, step by step) run over a copy of the shared demo lakehouse:
    its data steps find their inputs consumed and change nothing; train, promote and score run."""
    config, _ = demo
    root = tmp_path_factory.mktemp("notebooks")
    # A copy of the lakehouse: the notebooks' model versions and aliases stay out of the shared
    # registry. The landing zone is the demo's own (only read): the ingest checkpoints in the
    # copy name its files.
    shutil.copytree(config.storage.root, root / "lake")
    overrides = [f"storage.root={root}/lake", f"storage.landing={config.storage.landing}", *DEMO_OVERRIDES,
                 "training.model.n_estimators=60"]
    mp = pytest.MonkeyPatch()
    for name in ("DATABRICKS_RUNTIME_VERSION", "LAKEBOOST_TUNE_EVALS", "LAKEBOOST_MODEL", "LAKEBOOST_DATE"):
        mp.delenv(name, raising=False)
    mp.setenv("LAKEBOOST_PII_KEY", DEMO_PII_KEY)
    mp.setenv("CUSTOMERS_JDBC_URL", f"jdbc:sqlite:{config.storage.landing}/customers.db")
    mp.setenv("LAKEBOOST_ENV", "local")
    mp.setenv("LAKEBOOST_OVERRIDES", ", ".join(overrides))
    mp.setenv("MPLBACKEND", "Agg")
    yield run_notebook(NOTEBOOKS / "02_pipeline_step_by_step.py", run_times)
    mp.undo()


@pytest.mark.e2e
def test_pipeline_notebook_runs_every_step(pipeline_notebook: dict[str, Any]) -> None:
    summaries = pipeline_notebook["summaries"]
    assert list(summaries) == ["generate", *FRAMEWORK_STEPS]
    # Re-run over the lakehouse the pipeline built: the data steps change nothing.
    assert summaries["ingest"].rows_written == 0 and summaries["refine"].rows_written == 0
    assert summaries["train"].details["model_version"] > 1
    assert "promoted" in summaries["promote"].details
    assert summaries["score"].details["model_version"] >= 1


@pytest.mark.e2e
def test_explore_notebook_counts_tables_and_quality(pipeline_notebook: dict[str, Any],
                                                    run_times: dict[str, float]) -> None:
    ns = run_notebook(NOTEBOOKS / "01_explore_layers.py", run_times)
    rows = dict(zip(ns["inventory"]["table"], ns["inventory"]["rows"], strict=True))
    assert rows["bronze.transactions"] > 0 and rows["silver.transactions"] > 0 and rows["gold.predictions"] > 0
    assert ns["bronze_reasons"].count() > 0
    rates = ns["pass_rates"]["pass_rate"]
    assert len(rates) > 0 and rates.between(0, 1).all()


@pytest.mark.e2e
def test_train_and_tune_notebook_trains_and_runs_a_small_search(
        pipeline_notebook: dict[str, Any], run_times: dict[str, float], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEBOOST_TUNE_EVALS", "2")
    ns = run_notebook(NOTEBOOKS / "03_train_and_tune.py", run_times)
    assert 0.5 < ns["metrics"].loc["test", "roc_auc"] <= 1
    assert ns["version"] > pipeline_notebook["summaries"]["train"].details["model_version"]
    assert ns["tuned"].details["trials"] == 2 and ns["tuned"].details["model_version"] > ns["version"]


@pytest.mark.e2e
def test_score_notebook_scores_with_the_champion(pipeline_notebook: dict[str, Any],
                                                 run_times: dict[str, float]) -> None:
    ns = run_notebook(NOTEBOOKS / "04_score.py", run_times)
    champion = ns["aliases"].set_index("alias").loc["champion", "version"]
    assert ns["scored"].details["model_version"] == champion
    assert ns["predictions"].count() > 0


@pytest.mark.e2e
def test_monitoring_notebook_reads_the_monitor_tables_as_they_are(pipeline_notebook: dict[str, Any],
                                                                   run_times: dict[str, float]) -> None:
    """Notebook 05 over the lakehouse notebook 02 monitored: its verdict per window counts the
    table's breached rows by kind, and its performance view has the base rate beside the metric."""
    ns = run_notebook(NOTEBOOKS / "05_monitoring_tables.py", run_times)
    records = ns["records"]
    verdict = {(r["table"], r["window_start"], r["model_version"]): r for r in ns["verdict"].collect()}
    assert verdict, "the pipeline's monitor step judged at least one window"
    breached = (records.where("kind != 'data_quality' AND breached")
                .groupBy("table", "window_start", "model_version", "kind").count().collect())
    for row in breached:
        assert verdict[(row["table"], row["window_start"], row["model_version"])][row["kind"]] == row["count"]
    assert sum(r[k] for r in verdict.values() for k in ("feature_drift", "missing_data", "prediction_drift",
                                                         "performance")) == sum(r["count"] for r in breached)
    assert {"roc_auc", "pr_auc", "base_rate", "positives"} <= set(ns["performance"].columns)
    assert ns["psi"].count() == records.where("kind = 'feature_drift' AND metric = 'psi' AND slice = 'all'").count()
    # Profiles: one row per (table, column, window) with its percentiles; slices with their rows.
    profile = ns["profile"]
    assert profile.count() == records.where("kind = 'profile' AND slice = 'all' AND subject != '*'").select(
        "table", "subject", "window_start").distinct().count()
    assert profile.where("subject = 'score' AND p05 <= p50 AND p50 <= p95").count() > 0
    slices = ns["slices"].collect()
    assert {r["slice"].split("=")[0] for r in slices} == set(ns["config"].monitor.slices) == {"channel", "country"}
    assert all(r["profile:rows"] > 0 for r in slices)


@pytest.mark.e2e
def test_notebook_opened_in_the_notebooks_directory_reads_the_lakehouse_its_config_names(
        demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_times: dict[str, float]) -> None:
    """As Jupyter runs a notebook: the kernel's working directory is notebooks/ and no override names
    the lakehouse. The config (a copy of conf/, found through LAKEBOOST_CONF_DIR) says
    `../data/lakehouse`; resolved against the working directory it would be an empty lakehouse
    beside notebooks/, resolved against the config directory it is the demo's."""
    config, _ = demo
    project = tmp_path / "project"
    shutil.copytree(REPO / "conf", project / "conf")
    (project / "examples").symlink_to(REPO / "examples")  # application.python_path: ../examples
    (project / "data").mkdir()
    (project / "data" / "lakehouse").symlink_to(config.storage.root)
    monkeypatch.chdir(NOTEBOOKS)
    monkeypatch.setenv("LAKEBOOST_CONF_DIR", str(project / "conf"))
    monkeypatch.setenv("LAKEBOOST_ENV", "local")
    monkeypatch.setenv("LAKEBOOST_OVERRIDES", "")
    monkeypatch.setenv("LAKEBOOST_PII_KEY", DEMO_PII_KEY)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)

    ns = run_notebook(NOTEBOOKS / "01_explore_layers.py", run_times)

    assert ns["config"].storage.root == str(Path(config.storage.root).resolve())
    assert not (NOTEBOOKS / "data").exists()
    rows = dict(zip(ns["inventory"]["table"], ns["inventory"]["rows"], strict=True))
    assert rows["bronze.transactions"] > 0 and rows["silver.transactions"] > 0
    assert rows["gold.transaction_features"] > 0 and rows["gold.predictions"] > 0
