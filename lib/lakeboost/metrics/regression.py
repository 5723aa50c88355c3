"""Regression metrics (rmse, mae, r2) from one Spark aggregation."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeboost.metrics.base import LABEL, EvaluationError, require_columns
from lakeboost.spark.rows import first_row


def regression_metrics(predictions: DataFrame, *, label: str = LABEL,
                       prediction: str = "prediction") -> dict[str, float]:
    """rmse, mae and r2 from one aggregation; rows with a null label or prediction are ignored."""
    require_columns(predictions, label, prediction)
    y, yhat = F.col(label).cast("double"), F.col(prediction).cast("double")
    err = yhat - y
    agg = first_row(
        predictions
        .where(y.isNotNull() & yhat.isNotNull())
        .agg(F.count(F.lit(1)).alias("rows"), F.sum(err * err).alias("ss_res"), F.sum(F.abs(err)).alias("abs_err"),
             F.var_pop(y).alias("var_y"))  # Spark's variance is the numerically stable one
    )
    rows = int(agg["rows"])
    if rows == 0:
        raise EvaluationError(f"no row with both {label} and {prediction} non-null: nothing to evaluate")
    ss_res, ss_tot = float(agg["ss_res"]), float(agg["var_y"]) * rows
    # A constant label has no variance to explain: r2 is 1 for a perfect fit, else 0 (as scikit-learn).
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    return {"rows": rows, "rmse": (ss_res / rows) ** 0.5, "mae": agg["abs_err"] / rows, "r2": r2}
