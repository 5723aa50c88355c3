"""What every metric module shares: the label column's name, the log-loss clip, the error."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakeboost.errors import LakeboostError

# The label column of the prediction frames lakeboost evaluates (the dataset's label, renamed).
LABEL = "_label"

# Probabilities are clipped to [EPS, 1-EPS] so one confident mistake costs a large, finite loss.
EPS = 1e-15


class EvaluationError(LakeboostError):
    """Predictions cannot be evaluated (missing column, nothing to score, labels out of range)."""


def require_columns(predictions: DataFrame, *columns: str) -> None:
    """Raise EvaluationError naming the `columns` that `predictions` lacks."""
    missing = [c for c in columns if c not in predictions.columns]
    if missing:
        raise EvaluationError(
            f"predictions lack column(s) {missing}; found {predictions.columns}. "
            "Pass the column names as keyword arguments (label=, score=, prediction=)."
        )


def count_if(condition: Column) -> Column:
    """The number of rows where `condition` holds (an aggregate)."""
    return F.sum(F.when(condition, 1).otherwise(0))
