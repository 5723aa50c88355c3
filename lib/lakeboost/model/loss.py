"""The loss model stored with a regression model: a row's inputs and prediction -> its expected
|error| and error², as Spark expressions, and how far a window's realized loss strayed from that
expectation on validation (the interval of a direct loss estimate, DLE).

Fitted on the validation split by lakeboost.train.loss (small xgboost trees on the driver);
applied here as one Spark expression per target, the trees written out as CASE WHEN over the
model's encoded inputs (no UDF, no JVM model to save and load, the same on Spark Connect), so
the monitor's estimate reads the mapping training fitted, stored in `lakeboost_model.json`.

The interval is the spread of realized / estimated loss over validation windows of the same
size (see `LossModel.interval`), not a central-limit one: a window's loss is ruled by a few large,
time-correlated errors, so the normal approximation with independent rows is far too narrow
(it missed 8 of 8 bike-rental weeks, bench/results/estimate_dle_bikes.txt).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

# The loss model's targets: "abs" |prediction - label|, "sq" its square (MAE and MSE per row).
TARGETS = ("abs", "sq")
# Quantiles of realized / estimated loss stored per window size: any central level between 1%
# and 99% is interpolated from them.
RATIO_LEVELS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975, 0.99, 0.995)

INPUT = "_loss_input"  # the loss model's input columns, `inputs_of` adds them: INPUT0 the prediction
# A tree: a leaf value, or {"f": input index (0 is the prediction), "t": split, "y": tree where
# input < split, "n": tree otherwise, "m": "y" or "n", where a NULL input goes}.
Tree = float | dict[str, Any]


@dataclass(frozen=True)
class LossModel:
    """`trees[target]` summed over `base[target]` is the expected loss of a row (`TARGETS`) from
    the prediction and `inputs` (the model's encoded inputs, as scoring feeds the booster);
    `ratios[target]` holds, per window size in `sizes` (rows), the `RATIO_LEVELS` quantiles of a
    validation window's realized / estimated loss. `validation`: the rows it was fitted on, their
    MAE and RMSE."""

    inputs: tuple[str, ...]
    base: dict[str, float]
    trees: dict[str, list[Tree]]
    sizes: tuple[int, ...]
    ratios: dict[str, list[list[float]]]  # target -> per size -> per RATIO_LEVELS
    validation: dict[str, float]

    def inputs_of(self, frame: DataFrame, prediction: str) -> DataFrame:
        """`frame` with the loss model's inputs beside it as xgboost reads them (`INPUT` 0 the
        prediction, then `inputs`: float, NaN as NULL), computed once per row for `column`."""
        values = [F.col(f"`{prediction}`"), *(F.col(f"`{name}`") for name in self.inputs)]
        as_float = [v.cast("float") for v in values]
        return frame.select("*", *[F.when(~F.isnan(v), v).alias(f"{INPUT}{i}") for i, v in enumerate(as_float)])

    def column(self, target: str) -> Column:
        """The expected loss `target` ("abs" or "sq") of each row of a frame from `inputs_of`,
        never below 0."""
        total = F.lit(self.base[target])
        for tree in self.trees[target]:
            total = total + _expression(tree)
        return F.greatest(total, F.lit(0.0))

    def interval(self, target: str, rows: int, level: float) -> tuple[float, float] | None:
        """(low, high) multipliers of a window's estimated loss `target` for its central `level`
        interval: the quantiles of realized / estimated loss over validation windows of `rows`
        rows (interpolated in log rows between the stored sizes; above the largest, the largest's,
        which is wider than the truth). None below the smallest size: a window of fewer rows
        strays further than any window validation measured, and the smallest's quantiles would
        make an interval too narrow (a 3-row window judged decayed on a 16-row spread)."""
        if rows < self.sizes[0]:
            return None
        tail = (1.0 - level) / 2.0
        position = np.interp(math.log(max(rows, 1)), [math.log(s) for s in self.sizes], range(len(self.sizes)))
        below, share = int(math.floor(position)), position - math.floor(position)
        above = min(below + 1, len(self.sizes) - 1)
        quantiles = (1 - share) * np.array(self.ratios[target][below]) + share * np.array(self.ratios[target][above])
        low, high = np.interp([tail, 1.0 - tail], RATIO_LEVELS, quantiles)
        return float(low), float(high)

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": list(self.inputs), "base": self.base, "trees": self.trees, "sizes": list(self.sizes),
                "ratios": self.ratios, "validation": self.validation}

    @classmethod
    def from_dict(cls, value: dict[str, Any] | None) -> LossModel | None:
        if value is None:
            return None
        return cls(tuple(value["inputs"]), dict(value["base"]), dict(value["trees"]), tuple(value["sizes"]),
                   dict(value["ratios"]), dict(value["validation"]))


def _expression(tree: Tree) -> Column:
    if not isinstance(tree, dict):
        return F.lit(float(tree))
    # xgboost compares in float32 (`inputs_of` casts), and sends a missing value (NULL) one way
    # that the split names. Each branch is written once, a CASE WHEN per split: the generated code
    # grows with the trees' nodes, not more (a CASE WHEN for NULL besides would copy a subtree per level).
    goes_below = F.coalesce(F.col(f"{INPUT}{tree['f']}") < F.lit(tree["t"]).cast("float"), F.lit(tree["m"] == "y"))
    return F.when(goes_below, _expression(tree["y"])).otherwise(_expression(tree["n"]))
