"""The loss model of a regression model (lakeboost.model.loss), fitted at training time on the
validation split, where the labelled rows are: the monitor, which estimates a window's MAE and
RMSE before its labels (DLE), has none.

Two small xgboost boosters on the driver (`TREES` trees of depth `DEPTH`), one to |error| and one
to error², from the prediction and the model's numeric encoded inputs. The validation rows come
to the driver once (at most `MAX_ROWS` rows and `MAX_VALUES` values, a random sample beyond),
so the fit costs a collect and seconds of xgboost (about a minute of CPU at the bound), not a
Spark ML fit per target (GBTRegressor took 30 s on 1,043 bike-rental rows: a Spark job per tree
level).

The interval: each validation row's loss is also estimated out of fold (`FOLDS` contiguous spans
of time, each by boosters fitted on the others), and windows of validation rows are drawn to
record, per window size, the quantiles of realized / estimated loss: windows in time (four
contiguous runs of rows, a moving-block bootstrap: errors are correlated in time, a rainy day's
hours all miss together) and windows in one region of the loss model (rows adjacent in
estimated loss: a window whose inputs moved there), the wider of the two at each quantile. A
window at monitor time gets its estimate times the quantiles for its size: the window's
sampling spread, heavy tails, correlation and the loss model's own error, as validation showed
them.
"""

from __future__ import annotations

import json
import logging
import math
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import xgboost as xgb
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakeboost.errors import TrainingError
from lakeboost.model.loss import RATIO_LEVELS, TARGETS, LossModel, Tree

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

MAX_ROWS = 200_000  # validation rows brought to the driver; a random sample beyond
# ...and at most this many values (rows x (inputs + 2)): a wide model's rows are cut so the fit
# stays bounded in driver memory (32 MB of doubles) and time. Each of the 12 boosters (2 targets,
# 1 + FOLDS fits) costs about 2.3 CPU s per million values (exact trees; 200k rows x 10 inputs:
# 4.7 s, 50k x 40: 3.7 s, this machine); 200k rows of 200 inputs unbounded were 40M values, ~18 min.
MAX_VALUES = 4_000_000
MIN_ROWS = 50  # fewer validation rows than this: no loss model (its windows would be noise)
TREES, DEPTH, RATE = 40, 3, 0.15
# A leaf holds at least this many rows: error² is heavy-tailed, one large miss must not make a leaf.
MIN_LEAF_ROWS = 20
FOLDS = 5
DRAWS = 400
BLOCKS = 4  # contiguous runs of rows per drawn window
SMALLEST_WINDOW = 16  # rows: the smallest window size the ratios are recorded for


def fit_loss_model(validation: DataFrame, *, features: list[str], label: str, prediction: str,
                   order: str | None = None, seed: int = 0) -> LossModel:
    """The loss model of the predictions `prediction` of `label` in `validation` (the model's
    validation split, scored), from the prediction and the numeric columns of `features` (the
    model's encoded inputs), with its ratio quantiles per window size; `order` (the event time)
    lays the rows out in time for the out-of-fold spans and the drawn windows.

    Raises:
        TrainingError: fewer than `MIN_ROWS` validation rows with both a label and a prediction.
    """
    inputs = [f for f in features if isinstance(validation.schema[f].dataType, T.NumericType | T.BooleanType)]
    labelled = validation.where(F.col(label).isNotNull() & F.col(prediction).isNotNull())
    ordered = [order] if order and order in validation.columns else []
    rows = cast("pd.DataFrame", (
        labelled.select(*[F.col(f"`{c}`").cast("double").alias(f"c{i}") for i, c in enumerate([prediction, *inputs])],
                        F.col(label).cast("double").alias("y"), *[F.col(o).alias("t") for o in ordered])
        .orderBy(F.rand(seed)).limit(_row_limit(len(inputs)))
        .toPandas()  # at most MAX_ROWS rows, MAX_VALUES values, of the model's inputs: the fit runs on the driver
    ))
    if len(rows) < MIN_ROWS:
        raise TrainingError(f"the loss model needs at least {MIN_ROWS} validation rows with a label and a "
                            f"prediction; found {len(rows)}. Set monitor.estimate_loss: false, or give the "
                            "validation split more rows (training.split)")
    if ordered:
        rows = rows.sort_values("t", kind="stable")
    x = rows[[f"c{i}" for i in range(len(inputs) + 1)]].to_numpy(dtype=float)
    error = x[:, 0] - rows["y"].to_numpy(dtype=float)
    targets = {"abs": np.abs(error), "sq": error * error}
    base, trees, ratios = {}, {}, {}
    sizes = _sizes(len(x))
    rng = np.random.default_rng(seed)
    for target in TARGETS:
        y = targets[target]
        base[target] = float(y.mean())
        booster = _boosted(x, y, base=base[target], seed=seed)
        trees[target] = [_tree(json.loads(t)) for t in booster.get_dump(dump_format="json")]
        held_out, folds = _out_of_fold(x, y, seed=seed)
        ratios[target] = [_ratio_quantiles(y, held_out, folds, size, rng) for size in sizes]
    figures = {"rows": float(len(x)), "mae": float(targets["abs"].mean()), "rmse": float(targets["sq"].mean()) ** 0.5}
    return LossModel(tuple(inputs), base, trees, sizes, ratios, figures)


def _row_limit(inputs: int) -> int:
    """The validation rows brought to the driver for a model of `inputs` numeric inputs: at most
    MAX_ROWS and MAX_VALUES values (the prediction and the label besides), never below MIN_ROWS."""
    return max(MIN_ROWS, min(MAX_ROWS, MAX_VALUES // (inputs + 2)))


def _boosted(x: np.ndarray, y: np.ndarray, *, base: float, seed: int) -> xgb.Booster:
    params = {"objective": "reg:squarederror", "max_depth": DEPTH, "eta": RATE, "base_score": base,
              "min_child_weight": MIN_LEAF_ROWS, "seed": seed, "nthread": 1, "tree_method": "exact"}
    return xgb.train(params, xgb.DMatrix(x, label=y, missing=np.nan), num_boost_round=TREES)


def _out_of_fold(x: np.ndarray, y: np.ndarray, *, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Each row's expected loss by boosters fitted on the other `FOLDS` - 1 spans of time, and
    the spans (row indices)."""
    out = np.empty(len(y))
    folds = np.array_split(np.arange(len(y)), FOLDS)
    for fold in folds:
        rest = np.ones(len(y), dtype=bool)
        rest[fold] = False
        booster = _boosted(x[rest], y[rest], base=float(y[rest].mean()), seed=seed)
        out[fold] = booster.predict(xgb.DMatrix(x[fold], missing=np.nan))
    return np.maximum(out, 0.0), folds


def _sizes(rows: int) -> tuple[int, ...]:
    """Window sizes (rows) the ratios are recorded for: powers of two from SMALLEST_WINDOW up to
    the validation rows."""
    top = max(int(math.log2(max(rows, 1))), int(math.log2(SMALLEST_WINDOW)))
    return tuple(min(2 ** k, rows) for k in range(int(math.log2(SMALLEST_WINDOW)), top + 1))


def _ratio_quantiles(actual: np.ndarray, estimated: np.ndarray, folds: list[np.ndarray], size: int,
                     rng: np.random.Generator) -> list[float]:
    """RATIO_LEVELS quantiles of realized / estimated loss over windows of `size` rows, the
    wider of two kinds at each level (the lower quantile of the two below the median, the upper
    above it):

    - in time: DRAWS windows of BLOCKS contiguous runs at random places in time order (a
      moving-block bootstrap): the window's own sampling spread, heavy tails and errors
      correlated in time included;
    - in the loss model's regions: DRAWS windows, each a run of rows adjacent in estimated loss
      within one out-of-fold span (at most half its rows): a window whose inputs moved into one
      region, where the loss model's own error (it learnt that region from few rows) does not
      average out. Within one span, the rows' losses are independent of the boosters that
      estimated them.
    """
    def ratio(realized: np.ndarray, expected: np.ndarray) -> np.ndarray:
        return realized / np.maximum(expected, 1e-12)

    run = min(max(1, math.ceil(size / BLOCKS)), len(actual))
    starts = rng.integers(0, len(actual) - run + 1, size=(DRAWS, math.ceil(size / run)))
    realized, expected = (np.concatenate([[0.0], np.cumsum(v)]) for v in (actual, estimated))
    in_time = ratio((realized[starts + run] - realized[starts]).sum(axis=1),
                    (expected[starts + run] - expected[starts]).sum(axis=1))
    in_region = np.empty(DRAWS)
    for draw, fold in enumerate(rng.integers(0, len(folds), size=DRAWS)):
        rows = folds[fold][np.argsort(estimated[folds[fold]], kind="stable")]
        span = min(size, max(len(rows) // 2, 1))  # at most half a span: a region, not all of it
        start = int(rng.integers(0, len(rows) - span + 1))
        chosen = rows[start:start + span]
        in_region[draw] = ratio(actual[chosen].sum(), estimated[chosen].sum())
    time_q, region_q = np.quantile(in_time, RATIO_LEVELS), np.quantile(in_region, RATIO_LEVELS)
    return [float(min(a, b) if level < 0.5 else max(a, b) if level > 0.5 else a)
            for level, a, b in zip(RATIO_LEVELS, time_q, region_q, strict=True)]


def _tree(node: dict[str, Any]) -> Tree:
    """xgboost's JSON dump of one tree (features named f0, f1...) as lakeboost.model.loss's Tree."""
    if "leaf" in node:
        return float(node["leaf"])
    children = {child["nodeid"]: child for child in node["children"]}
    return {"f": int(node["split"][1:]), "t": float(node["split_condition"]), "y": _tree(children[node["yes"]]),
            "n": _tree(children[node["no"]]), "m": "y" if node["missing"] == node["yes"] else "n"}
