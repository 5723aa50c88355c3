"""Multiclass metrics (accuracy, macro F1, log loss) from one groupBy(label, prediction)."""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeboost.metrics.base import EPS, LABEL, EvaluationError, count_if, require_columns

log = logging.getLogger(__name__)


def multiclass_metrics(predictions: DataFrame, *, num_classes: int, label: str = LABEL,
                       prediction: str = "prediction", probabilities: str = "probabilities") -> dict[str, float]:
    """accuracy, macro_f1 and log_loss from one groupBy(label, prediction): k*k cells to the driver.

    macro_f1 averages over classes present in labels or predictions (as scikit-learn does).
    """
    if num_classes < 2:
        raise EvaluationError(f"num_classes must be >= 2, got {num_classes}")
    require_columns(predictions, label, prediction, probabilities)
    idx = F.col(label).cast("int")
    in_range = (idx >= 0) & (idx < num_classes)
    # Guarded so an out-of-range label yields null here and a clear error below, not an index error.
    p_true = F.when(in_range, F.try_element_at(F.col(probabilities), idx + 1))
    loss = -F.log(F.least(F.greatest(p_true, F.lit(EPS)), F.lit(1.0 - EPS)))
    usable = F.coalesce((F.size(probabilities) == num_classes) & p_true.isNotNull(), F.lit(False))
    cells = (
        predictions
        .groupBy(idx.alias(LABEL), F.col(prediction).cast("int").alias("prediction"))
        .agg(F.count(F.lit(1)).alias("n"), F.sum(loss).alias("loss"),
             count_if(~usable).alias("bad_size"))
        .collect()  # at most k*k cells (plus nulls)
    )
    counts: dict[tuple[int, int], int] = {}
    loss_sum, bad_size = 0.0, 0
    for c in cells:
        if c[LABEL] is None or c["prediction"] is None:
            log.warning("multiclass_metrics skipped %d rows with a null label or prediction", c["n"])
            continue
        if not (0 <= c[LABEL] < num_classes and 0 <= c["prediction"] < num_classes):
            raise EvaluationError(f"label/prediction ({c[LABEL]}, {c['prediction']}) outside 0..{num_classes - 1}; "
                                  "check num_classes against the label encoding")
        counts[(c[LABEL], c["prediction"])] = c["n"]
        loss_sum, bad_size = loss_sum + (c["loss"] or 0.0), bad_size + c["bad_size"]
    if bad_size:
        raise EvaluationError(f"{bad_size} rows have a null {probabilities} array, a null entry for their label, "
                              f"or a length other than num_classes={num_classes}")
    rows = sum(counts.values())
    if rows == 0:
        raise EvaluationError("no row with a label and a prediction: nothing to evaluate")
    return {"rows": rows, "accuracy": sum(n for (a, b), n in counts.items() if a == b) / rows,
            "macro_f1": macro_f1(counts), "log_loss": loss_sum / rows}


def macro_f1(counts: dict[tuple[int, int], int]) -> float:
    """Mean F1 over the classes in (label, prediction) -> count cells."""
    classes = {a for a, _ in counts} | {b for _, b in counts}
    scores = []
    for k in classes:
        tp = counts.get((k, k), 0)
        fp = sum(n for (a, b), n in counts.items() if b == k and a != k)
        fn = sum(n for (a, b), n in counts.items() if a == k and b != k)
        scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)
