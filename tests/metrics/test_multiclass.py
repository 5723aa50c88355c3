"""Multiclass metrics agree with scikit-learn; a label outside the classes is named."""

from __future__ import annotations

import numpy as np
import pytest
from lakeboost.metrics.base import EvaluationError
from lakeboost.metrics.multiclass import multiclass_metrics
from pyspark.sql import SparkSession
from sklearn import metrics as skm


def test_multiclass_metrics_match_sklearn(spark: SparkSession) -> None:
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 3, size=300)
    logits = rng.normal(size=(300, 3)) + 1.5 * np.eye(3)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    preds = probs.argmax(axis=1)
    rows = [(int(a), int(b), [float(v) for v in p]) for a, b, p in zip(labels, preds, probs, strict=True)]
    df = spark.createDataFrame(rows, "_label int, prediction int, probabilities array<double>")
    m = multiclass_metrics(df, num_classes=3)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(labels, preds), abs=1e-12)
    assert m["macro_f1"] == pytest.approx(skm.f1_score(labels, preds, average="macro"), abs=1e-12)
    assert m["log_loss"] == pytest.approx(skm.log_loss(labels, probs, labels=[0, 1, 2]), abs=1e-6)


def test_multiclass_label_outside_num_classes_raises(spark: SparkSession) -> None:
    df = spark.createDataFrame([(0, 0, [0.9, 0.1]), (2, 1, [0.3, 0.7])],
                               "_label int, prediction int, probabilities array<double>")
    with pytest.raises(EvaluationError, match=r"\(2, 1\) outside 0\.\.1; check num_classes"):
        multiclass_metrics(df, num_classes=2)
