"""The card-fraud demo's references: the generator's own fraud probability, and the base rate.

The generator (simulate.py) decides fraud by a logistic model of columns the data exposes (the
amount against the customer's typical amount, abroad, a high-risk category, the local night,
online) plus Normal noise (FraudModel.noise_sd). The oracle rebuilds each payment's columns with
the generator's own functions and scores it with that model, the noise integrated out (20-point
Gauss-Hermite): no model of these payments can rank or calibrate better in expectation (it knows
each customer's typical amount exactly, where a model estimates it from the history). The
constant training base rate is the floor. Both are scored on the rows, labels and time split of
the lakehouse's `gold.training_set` (the model's examples: chargebacks reported by the cutoff).
Prints one JSON line per reference: ROC AUC, PR AUC (average precision), log loss and Brier on
the validation and test splits.

Usage (after `make demo`, or the pipeline up to `features`):
    PYTHONPATH=lib:examples .venv/bin/python -m card_fraud.oracle [--set storage.root=...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from lakeboost.config import load_config
from lakeboost.features.splits import assign_splits
from lakeboost.io import TableCatalog
from lakeboost.spark.session import build_spark
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from sklearn import metrics

from card_fraud.generator import _dimensions, _start_epoch
from card_fraud.job import DemoConfig
from card_fraud.scenario import FRAUD, HIGH_RISK_CATEGORIES
from card_fraud.simulate import DAY, Traffic, _behave, _draw_keys, _place

REPO_CONF = Path(__file__).resolve().parents[2] / "conf"


def fraud_probability(spark: SparkSession, demo: DemoConfig) -> DataFrame:
    """txn_id, the generator's probability of fraud (its noise integrated out)."""
    from card_fraud.dimensions import Period

    period = Period(start=_start_epoch(demo.start_date), days=demo.days)
    with tempfile.TemporaryDirectory() as scratch:  # _dimensions also writes the dimension files
        customers, merchants = _dimensions(demo.seed, demo.rows, period, Path(scratch))
    traffic = Traffic(seed=demo.seed, start=period.start, first_day=0, n_days=demo.days,
                      customers=len(customers.profile), merchants=len(merchants.profile))
    payments = (
        _draw_keys(spark.range(demo.rows), traffic)
        .join(F.broadcast(spark.createDataFrame(customers.profile)), on="customer_id", how="inner")
        .join(F.broadcast(spark.createDataFrame(merchants.profile)), on="merchant_idx", how="inner")
        .transform(_place, traffic=traffic)
        .transform(_behave, traffic=traffic)
    )
    model = FRAUD
    night = F.pmod(F.col("local_ts"), DAY) < 6 * 3600
    logit = (F.lit(model.intercept)
             + model.amount_ratio * F.greatest(F.col("log_ratio"), F.lit(0.0))
             + model.foreign * F.col("is_foreign").cast("double")
             + model.high_risk * F.col("category").isin(*HIGH_RISK_CATEGORIES).cast("double")
             + model.night * night.cast("double")
             + model.online * (F.col("channel") == "online").cast("double"))
    nodes, weights = np.polynomial.hermite.hermgauss(20)  # E[f(Z)] = sum w f(sqrt(2) x) / sqrt(pi)
    expected = sum(float(w / np.sqrt(np.pi)) / (1.0 + F.exp(-(logit + float(model.noise_sd * np.sqrt(2) * x))))
                   for x, w in zip(nodes, weights, strict=True))
    return payments.select(F.format_string("T%010d", F.col("id")).alias("txn_id"), expected.alias("oracle"))


def scores(label: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    clipped = np.clip(predicted, 1e-7, 1 - 1e-7)
    return {"roc_auc": round(float(metrics.roc_auc_score(label, predicted)), 4) if predicted.std() > 0 else 0.5,
            "pr_auc": round(float(metrics.average_precision_score(label, predicted)), 4),
            "log_loss": round(float(metrics.log_loss(label, clipped, labels=[0, 1])), 4),
            "brier": round(float(np.mean((predicted - label) ** 2)), 4), "rows": len(label),
            "base_rate": round(float(label.mean()), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conf-dir", type=Path, default=REPO_CONF)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    config = load_config("local", args.overrides, conf_dir=args.conf_dir)
    demo: DemoConfig = config.sections.get("demo") or DemoConfig()
    spark = build_spark(config.spark, app_name="card-fraud-oracle")
    dataset = config.dataset
    examples = TableCatalog(spark, config.storage).read("gold.training_set")
    split = assign_splits(examples.select(*dataset.key, dataset.event_time, dataset.label.column),
                          cfg=config.training.split, label=dataset.label.column, key=dataset.key,
                          time_column=dataset.event_time)
    # ~50k rows of three columns: a reference script, not a job.
    rows = (split.join(fraud_probability(spark, demo), on=list(dataset.key), how="left")
            .select("split", dataset.label.column, "oracle").toPandas())
    assert rows["oracle"].notna().all(), "a training example the generator's payments do not hold"
    prior = float(rows.loc[rows["split"] == "train", dataset.label.column].mean())
    for name, column in (("oracle (the generator's probability)", rows["oracle"].to_numpy()),
                         ("base rate of the training rows", np.full(len(rows), prior))):
        out: dict[str, object] = {"reference": name, "rows": rows["split"].value_counts().to_dict()}
        for part in ("valid", "test"):
            chosen = (rows["split"] == part).to_numpy()
            out[part] = scores(rows[dataset.label.column].to_numpy()[chosen].astype(int), column[chosen])
        print(json.dumps(out))
    spark.stop()


if __name__ == "__main__":
    main()
