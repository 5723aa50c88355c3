"""A second application on the framework, by configuration only (examples/deliveries).

Orders with a composite key (shop, order_no), a shop dimension over JDBC aligned as of the
order's time, hourly rain as-of joined through the shop's region, and a *value* label (late
delivery) that is known only once the parcel arrived. The pipeline runs from the raw files
to a promoted, scored model; orders not delivered by the cutoff are left out of the training
set, and the count is checked against the prepared data by hand.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from lakeboost.config import load_config
from lakeboost.io import TableCatalog
from lakeboost.pipeline import run_pipeline
from mlflow import MlflowClient
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from tests.conftest import REPO
from tests.helpers import load_script

pytestmark = pytest.mark.e2e
APP = REPO / "examples" / "deliveries"


@dataclass(frozen=True)
class Lake:
    root: Path
    orders: pd.DataFrame
    overrides: list[str]
    environ: dict[str, str]

    def config(self, *more: str):
        return load_config("local", [*self.overrides, *more], conf_dir=APP / "conf", environ=self.environ)


@pytest.fixture(scope="module")
def lake(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The raw files prepared and ingested and refined once; each test builds its own gold on them."""
    root = tmp_path_factory.mktemp("deliveries")
    orders = load_script(APP / "prepare.py").prepare(root / "landing", orders=2000, seed=5)
    lake = Lake(root, orders, [f"storage.root={root}/lake", f"storage.landing={root}/landing",
                               "training.model.n_estimators=40"],
                {"SHOPS_JDBC_URL": f"jdbc:sqlite:{root}/landing/shops.db"})
    run_pipeline(spark, lake.config(), ["ingest", "refine"])
    return lake


def test_deliveries_run_from_raw_files_to_a_scored_model(spark: SparkSession, lake: Lake) -> None:
    config, orders = lake.config(), lake.orders
    summary = run_pipeline(spark, config, ["features", "train", "promote", "score"])

    catalog = TableCatalog(spark, config.storage)
    # By hand: the cutoff is the latest order; an order counts once it was delivered by then,
    # and once past the warm-up (auto: the 7-day windows; a value label needs no maturity).
    cutoff = orders["placed_at"].max()
    assert config.gold.training_set.resolved_warm_up() == pd.Timedelta(days=7)
    warmed = orders["placed_at"] >= orders["placed_at"].min() + pd.Timedelta(days=7)
    known = orders[orders["delivered_at"].notna() & (orders["delivered_at"] <= cutoff) & warmed]
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


# Other objectives on the same orders, by configuration only: the delay in hours (regression)
# and its band (multiclass).
OBJECTIVES = {
    "regression": ["training.model.objective=reg:squarederror",
                   "dataset.label={kind: value, column: delay, expr: delay_hours, available_at: delivered_at}"],
    "multiclass": ["training.model.objective=multi:softprob",
                   "dataset.label={kind: value, column: band, available_at: delivered_at, "
                   "expr: 'CASE WHEN delay_hours < 48 THEN 0 WHEN delay_hours < 96 THEN 1 ELSE 2 END'}"],
}
WORSE = ["training.model.n_estimators=1", "training.model.early_stopping_rounds=null",
         "training.model.params={max_depth: 1, learning_rate: 0.01}"]


@pytest.mark.parametrize("objective", sorted(OBJECTIVES))
def test_each_objective_trains_promotes_in_its_metrics_direction_scores_and_is_monitored(
        spark: SparkSession, lake: Lake, objective: str) -> None:
    overrides = [*OBJECTIVES[objective], f"training.tracking.registered_model=deliveries_{objective}"]
    config = lake.config(*overrides)
    summary = run_pipeline(spark, config, ["features", "train", "promote"])
    test = summary.details["train"]["metrics"]["test"]
    if objective == "regression":
        # The delay has a spread of tens of hours; the model must explain a good part of it.
        assert test["r2"] > 0.3 and test["rmse"] < 40
        plots = {a.path for a in MlflowClient().list_artifacts(summary.details["train"]["run_id"], "plots")}
        assert "plots/test_predictions_over_time.png" in plots  # predicted against actual, with the model
    else:
        assert test["accuracy"] > 0.45 and test["log_loss"] < 1.05  # 3 bands: a constant scores ~1.1
    champion = summary.details["promote"]["challenger"]
    assert summary.details["promote"]["promoted"]

    # A challenger worse on a lower-is-better metric (RMSE, log loss: 1 shallow tree) must lose.
    worse = run_pipeline(spark, lake.config(*overrides, *WORSE), ["train", "promote"]).details["promote"]
    metric = "rmse" if objective == "regression" else "log_loss"
    comparison = worse["comparison"]
    assert comparison["challenger"][metric] > comparison["champion"][metric]
    assert not worse["promoted"] and f"challenger loses: {metric}" in worse["decision"]

    scored = run_pipeline(spark, config, ["score", "monitor"])
    catalog = TableCatalog(spark, config.storage)
    predictions = catalog.read("gold.predictions").filter(F.col("model_name") == f"deliveries_{objective}")
    assert predictions.select("model_version").distinct().collect()[0][0] == champion  # the champion scored
    rows = predictions.collect()
    assert rows and all(r.threshold is None for r in rows)
    if objective == "regression":
        assert all(r.predicted_label is None and r.score is not None for r in rows)
    else:
        assert all(len(r.probabilities) == 3 and abs(sum(r.probabilities) - 1) < 1e-5
                   and r.probabilities[r.predicted_label] == r.score for r in rows)
    records = catalog.read(config.monitor.table).filter(
        (F.col("kind") == "performance") & (F.col("model_version") == champion))
    assert records.filter(F.col("metric") == metric).count() >= 1  # the objective's metric per window
    assert scored.details["monitor"]["model_version"] == champion
