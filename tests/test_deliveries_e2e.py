"""A second application on the framework, by configuration only (examples/deliveries).

Orders with a composite key (shop, order_no), a shop dimension over JDBC aligned as of the
order's time, hourly rain as-of joined through the shop's region, and a *value* label (late
delivery) that is known only once the parcel arrived. The pipeline runs from the raw files
to a promoted, scored model; orders not delivered by the cutoff are left out of the training
set, and the count is checked against the prepared data by hand.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import pandas as pd
import pytest
from lakeboost.config import load_config
from lakeboost.io import TableCatalog
from lakeboost.pipeline import run_pipeline
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from tests.conftest import REPO

pytestmark = pytest.mark.e2e
APP = REPO / "examples" / "deliveries"


def _prepare_module():
    spec = importlib.util.spec_from_file_location("deliveries_prepare", APP / "prepare.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_deliveries_run_from_raw_files_to_a_scored_model(spark: SparkSession, tmp_path: Path) -> None:
    orders = _prepare_module().prepare(tmp_path / "landing", orders=2000, seed=5)
    config = load_config("local", [f"storage.root={tmp_path}/lake", f"storage.landing={tmp_path}/landing",
                                   "training.model.n_estimators=40"],
                         conf_dir=APP / "conf", environ={"SHOPS_JDBC_URL": f"jdbc:sqlite:{tmp_path}/landing/shops.db"})

    summary = run_pipeline(spark, config, ["ingest", "refine", "features", "train", "promote", "score"])

    catalog = TableCatalog(spark, config.storage)
    # By hand: the cutoff is the latest order; an order counts once it was delivered by then.
    cutoff = orders["placed_at"].max()
    known = orders[orders["delivered_at"].notna() & (orders["delivered_at"] <= cutoff)]
    late = known["delivered_at"] > known["placed_at"] + pd.Timedelta(days=3)
    training = catalog.read("gold.training_set")
    assert training.count() == len(known) < len(orders)
    assert training.filter("late = 1").count() == int(late.sum())
    assert training.select("shop", "order_no").distinct().count() == len(known)  # the composite key is unique
    assert catalog.read("silver.orders_enriched").filter(F.col("region").isNull()).count() == 0
    assert summary.details["train"]["metrics"]["test"]["roc_auc"] > 0.7
    assert summary.details["promote"]["promoted"]
    predictions = catalog.read("gold.predictions")
    latest = orders["placed_at"].max().date()
    assert predictions.count() == int((orders["placed_at"].dt.date == latest).sum()) > 0
    assert set(predictions.columns) >= {"shop", "order_no", "placed_date", "score", "model_version"}
    assert isinstance(cutoff, dt.datetime)
