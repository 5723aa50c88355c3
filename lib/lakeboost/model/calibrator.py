"""The calibrator stored with a binary model: raw score -> probability, as a Spark expression.

Fitted on the validation split by lakeboost.train.calibrate; applied here, as one expression (no
UDF), so the same mapping runs in batch scoring, in a streaming micro-batch and in evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F

from lakeboost.errors import LakeboostError
from lakeboost.metrics.base import EPS


class CalibrationError(LakeboostError):
    """A calibrator cannot be fitted (no labelled rows, one class only) or is malformed."""


@dataclass(frozen=True)
class Calibrator:
    method: str  # platt | isotonic
    params: dict[str, Any] = field(default_factory=dict)

    def column(self, raw: Column) -> Column:
        """The calibrated probability of the raw score `raw` (null stays null)."""
        if self.method == "platt":
            p = F.least(F.greatest(raw.cast("double"), F.lit(EPS)), F.lit(1.0 - EPS))
            z = F.lit(self.params["a"]) * F.log(p / (1.0 - p)) + F.lit(self.params["b"])
            # greatest() skips nulls: without the guard a null raw score would become ~0.
            return F.when(raw.isNotNull(), F.lit(1.0) / (F.lit(1.0) + F.exp(-z)))
        if self.method == "isotonic":
            return _interpolate(raw.cast("double"), self.params["x"], self.params["y"])
        raise CalibrationError(f"unknown calibration method {self.method!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "params": self.params}

    @classmethod
    def from_dict(cls, value: dict[str, Any] | None) -> Calibrator | None:
        return None if value is None else cls(value["method"], dict(value["params"]))


def _interpolate(s: Column, xs: list[float], ys: list[float]) -> Column:
    """Piecewise-linear through (xs, ys), constant beyond the ends: sklearn's isotonic predict."""
    if len(xs) == 1:
        return F.when(s.isNotNull(), F.lit(ys[0]))
    x_arr, y_arr = F.array(*map(F.lit, xs)), F.array(*map(F.lit, ys))
    below = F.size(F.filter(x_arr, lambda x: x <= s))  # how many knots lie at or below s
    x0, x1 = F.element_at(x_arr, below), F.element_at(x_arr, below + 1)
    y0, y1 = F.element_at(y_arr, below), F.element_at(y_arr, below + 1)
    return (
        F.when(s.isNull(), F.lit(None).cast("double"))
        .when(below == 0, F.lit(ys[0]))
        .when(below >= len(xs), F.lit(ys[-1]))
        .otherwise(y0 + (y1 - y0) * (s - x0) / (x1 - x0))
    )
