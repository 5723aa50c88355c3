"""The deliveries application's references: the generator's own probability of lateness, and the base rate.

prepare.py draws each parcel's delivery time as Gamma(3, 12 h) + 0.08 h/km + 2 h/kg, plus 30 h
for a shop with a slow courier, rounded to the hour; it is late after 3 days. So the chance that
an order is late is known exactly from its weight, distance and courier: no model of these orders
can rank or calibrate better, in expectation (the "oracle"). The constant training base rate is
the floor. Both are scored on the rows and time split the lakeboost application trains on: orders
delivered by the training cutoff (the latest order placed), after the 7-day warm-up, split by the
placing time's quantiles (0.65, 0.85: `training.split` valid_fraction 0.15, test_fraction 0.2).
Prints one JSON line per reference with ROC AUC, PR AUC (average precision), log loss and Brier
on the validation and test splits.

Usage: python examples/deliveries/baseline.py [--orders N] [--seed S]   (prepare.py's defaults)
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn import metrics

HERE = Path(__file__).resolve().parent
WARM_UP = dt.timedelta(days=7)
VALID_FRACTION, TEST_FRACTION = 0.15, 0.2


def _prepare_module():
    spec = importlib.util.spec_from_file_location("deliveries_prepare", HERE / "prepare.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def labelled_orders(orders: pd.DataFrame) -> pd.DataFrame:
    """The training set's rows: delivered by the cutoff, after the warm-up; the label and the split."""
    cutoff = orders["placed_at"].max()
    kept = orders[orders["delivered_at"].notna() & (orders["delivered_at"] <= cutoff)
                  & (orders["placed_at"] >= orders["placed_at"].min() + WARM_UP)].copy()
    kept["late"] = (kept["delivered_at"] > kept["placed_at"] + dt.timedelta(days=3)).astype(int)
    times = np.sort(kept["placed_at"].to_numpy())
    # The exact quantile lakeboost's time split takes: the ceil(p * n)-th smallest time.
    valid_from, test_from = (times[max(math.ceil(p * len(times)), 1) - 1]
                             for p in (1 - TEST_FRACTION - VALID_FRACTION, 1 - TEST_FRACTION))
    kept["split"] = np.where(kept["placed_at"] >= test_from, "test",
                             np.where(kept["placed_at"] >= valid_from, "valid", "train"))
    return kept


def oracle_probability(orders: pd.DataFrame, shop_is_slow: pd.Series) -> np.ndarray:
    """P(round(Gamma(3, 12) + 0.08 distance + 2 weight + 30 slow) > 72 h), prepare.py's model."""
    fixed = 0.08 * orders["distance_km"] + 2.0 * orders["weight_kg"] + 30.0 * shop_is_slow
    return stats.gamma.sf(np.clip(72.5 - fixed.to_numpy(), 0, None), a=3.0, scale=12.0)


def scores(label: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    clipped = np.clip(predicted, 1e-7, 1 - 1e-7)
    return {"roc_auc": round(float(metrics.roc_auc_score(label, predicted)), 4) if predicted.std() > 0 else 0.5,
            "pr_auc": round(float(metrics.average_precision_score(label, predicted)), 4),
            "log_loss": round(float(metrics.log_loss(label, clipped, labels=[0, 1])), 4),
            "brier": round(float(np.mean((predicted - label) ** 2)), 4), "rows": len(label),
            "base_rate": round(float(label.mean()), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--shops", type=int, default=40)
    args = parser.parse_args()
    prepare = _prepare_module()
    # The orders exactly as prepare.py writes them (they are its generator's first draws).
    orders = labelled_orders(prepare.orders_frame(np.random.default_rng(args.seed), args.orders, args.shops))
    slow = (orders["shop"].str[1:].astype(int) % 5 == 0).astype(float)  # the shops with a slow courier
    oracle = oracle_probability(orders, slow)
    prior = float(orders.loc[orders["split"] == "train", "late"].mean())
    counts = orders["split"].value_counts().to_dict()
    for name, predicted in (("oracle (prepare.py's probability)", oracle),
                            ("base rate of the training rows", np.full(len(orders), prior))):
        row: dict[str, object] = {"reference": name, "rows": counts}
        for split in ("valid", "test"):
            rows = (orders["split"] == split).to_numpy()
            row[split] = scores(orders["late"].to_numpy()[rows], predicted[rows])
        print(json.dumps(row))


if __name__ == "__main__":
    main()
