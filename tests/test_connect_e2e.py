"""The demo pipeline over Spark Connect, against the classic run of the same data.

The session `demo` fixture ran the pipeline once on a classic session; this test runs the same
steps on the same landing zone (same generator seed and size) on a real Spark Connect server
(`connect_spark`), into a lakehouse of its own, and requires the same rows in every table and
the same step counts. Each step's wall time on both sessions is printed (`-s`) for the record.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from lakeboost.cost import CONNECT_UNKNOWN
from lakeboost.io import TableCatalog
from lakeboost.model.tracking import use_tracking
from lakeboost.pipeline import run_pipeline
from lakeboost.spark.fs import list_names
from lakeboost.spark.kind import is_connect
from lakeboost.spark.rows import first_row
from pyspark.sql import SparkSession

from tests.conftest import demo_config

pytestmark = pytest.mark.e2e

# Every step of the demo pipeline after `generate` (the landing zone is the classic run's).
STEPS = ["ingest", "refine", "features", "train", "promote", "score", "score_stream", "monitor"]
COUNTS = ("rows_read", "rows_written", "rows_quarantined")


def _tables(spark: SparkSession, root: str) -> list[str]:
    """`layer.table` for every Delta table under the lakehouse root."""
    return sorted(f"{layer}.{table}" for layer in ("bronze", "silver", "gold")
                  for table in list_names(spark, f"{root}/{layer}")
                  if "_delta_log" in list_names(spark, f"{root}/{layer}/{table}"))


def test_the_pipeline_over_spark_connect_matches_the_classic_run(connect_spark: SparkSession, demo,
                                                                 tmp_path: Path) -> None:
    classic_config, classic = demo
    # The live events in two micro-batches, not the fixture's ten (LIVE_AS_COMMITS, for the stream
    # kill test): several batches over Connect still, eight fewer streaming round trips; the same rows.
    config = demo_config(tmp_path, ["sources.card_events.max_files_per_trigger=5"],
                         landing=Path(classic_config.storage.landing))
    spark = connect_spark
    assert is_connect(spark)

    use_tracking(config)  # this run's own MLflow store and registry (under its lakehouse)
    times: dict[str, tuple[float, float]] = {}
    ran_details: dict[str, dict] = {}
    for step in STEPS:
        started = time.monotonic()
        summary = run_pipeline(spark, config, [step])
        times[step] = (time.monotonic() - started, classic[step]["seconds"])
        print(f"\n{step} over Connect: {times[step][0]:.1f} s (classic {times[step][1]:.1f} s), "
              f"{ {k: summary.details[step][k] for k in COUNTS} }")
        ran = ran_details[step] = summary.details[step]
        assert {k: ran[k] for k in COUNTS} == {k: classic[step][k] for k in COUNTS}, step
        assert ran["cost"]["task_metrics"] == CONNECT_UNKNOWN and ran["cost"]["gb_hours"] > 0

    # The model: the same training and test rows; its metrics. Over Connect the fit is xgboost.spark's
    # own, which splits the rows round-robin between its workers where the classic fit keeps
    # lakeboost's layout (train/fit.py): a different split of the same rows, so a model equal in
    # quality, not in every float (tests/train/test_connect_fit.py shows the same split gives the
    # same model). 14 test positives: the areas move by a few hundredths between such models.
    test_metrics, classic_metrics = ran_details["train"]["metrics"]["test"], classic["train"]["metrics"]["test"]
    assert set(test_metrics) == set(classic_metrics)
    for name in ("rows", "positives", "base_rate"):
        assert test_metrics[name] == classic_metrics[name], name
    for name, tolerance in (("roc_auc", 0.05), ("log_loss", 0.01), ("brier", 0.005), ("accuracy", 0.01)):
        assert test_metrics[name] == pytest.approx(classic_metrics[name], abs=tolerance), name
    assert test_metrics["roc_auc"] > 0.65 and test_metrics["pr_auc"] > 2 * test_metrics["base_rate"]
    assert ran_details["promote"]["promoted"] == classic["promote"]["promoted"] is True
    assert ran_details["score_stream"]["batches"] == classic["score_stream"]["batches"]
    assert ran_details["monitor"]["windows"] == classic["monitor"]["windows"]
    assert ran_details["monitor"]["alerts"] == classic["monitor"]["alerts"]

    connect_catalog = TableCatalog(spark, config.storage)
    classic_catalog = TableCatalog(spark, classic_config.storage)  # the classic run's tables, read over Connect
    tables = _tables(spark, config.storage.root)
    assert set(tables) <= set(_tables(spark, classic_config.storage.root))
    assert {"bronze.transactions", "silver.transactions", "gold.transaction_features", "gold.training_set",
            "gold.predictions", "gold.stream_predictions"} <= \
        set(tables)
    # Every table's rows on both sessions, in one query (Delta answers count(*) from its stats).
    counts = first_row(spark.sql("SELECT " + ", ".join(
        f"(SELECT count(*) FROM {catalog.sql_ref(table)}) AS `{side}:{table}`"
        for table in tables for side, catalog in (("connect", connect_catalog), ("classic", classic_catalog)))))
    assert {t: counts[f"connect:{t}"] for t in tables} == {t: counts[f"classic:{t}"] for t in tables}
    # The features themselves, not only their number: the same rows on both sessions.
    features = "gold.transaction_features"
    columns = [c for c in classic_catalog.read(features).columns if not c.startswith("_")]
    assert connect_catalog.read(features).select(*columns).exceptAll(
        classic_catalog.read(features).select(*columns)).count() == 0

    print("\nstep         rows read/written/quarantined (both)  connect s  classic s")
    for step, (over_connect, over_classic) in times.items():
        rows = "/".join(str(classic[step][k]) for k in COUNTS)
        print(f"{step:<12} {rows:<38} {over_connect:>9.1f} {over_classic:>10.1f}")
    for kind, metrics in (("connect", test_metrics), ("classic", classic_metrics)):
        print(f"test metrics {kind}: " + " ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())
                                                  if isinstance(v, float)))
    use_tracking(classic_config)  # later tests of this process read the classic run's registry
