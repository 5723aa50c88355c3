"""Leakage audit: binned single-feature AUCs against a pairwise count, and the time check."""

from __future__ import annotations

import math

import pytest
from lakeboost.errors import LeakageError
from lakeboost.features.audit import BINS, audit_leakage, single_feature_auc
from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def _pairwise_auc(rows: list[tuple[int, float | None]], lo: float, hi: float) -> float:
    """Every (positive, negative) pair compared on the feature's histogram bin, ties half; NULL a bin below all."""
    def bin_of(x: float | None) -> int:
        return -1 if x is None else min(math.floor((x - lo) / ((hi - lo) / BINS)), BINS - 1)
    pos = [bin_of(x) for y, x in rows if y == 1]
    neg = [bin_of(x) for y, x in rows if y == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    auc = wins / (len(pos) * len(neg))
    return max(auc, 1 - auc)


def test_binned_aucs_equal_a_pairwise_count_and_leaks_are_named(spark: SparkSession) -> None:
    df = spark.range(400).select(
        (F.col("id") % 3 == 0).cast("int").alias("label"),
        F.timestamp_seconds(F.col("id") * 60).alias("event_time"),
        F.timestamp_seconds(F.col("id") * 60 - 1).alias("_features_as_of"),
        F.when(F.col("id") % 7 != 0, F.sin(F.col("id")) + (F.col("id") % 3 == 0).cast("int")).alias("it's noisy"),
        ((F.col("id") * 37) % 101).cast("double").alias("noise"),
        F.lit(5.0).alias("constant"),
    )
    rows = df.collect()

    aucs = audit_leakage(df, label="label", event_time="event_time", time_columns=["_features_as_of"],
                         feature_columns=["it's noisy", "noise", "constant"], max_auc=0.99).aucs

    for feature in ("it's noisy", "noise"):
        values = [r[feature] for r in rows if r[feature] is not None]
        expected = _pairwise_auc([(r["label"], r[feature]) for r in rows], min(values), max(values))
        assert aucs[feature] == pytest.approx(expected, abs=1e-12)
    assert aucs["constant"] == 0.5
    assert aucs == single_feature_auc(df, label="label", features=["it's noisy", "noise", "constant"])
    with pytest.raises(LeakageError, match="feature \"it's noisy\" alone predicts 'label'"):
        audit_leakage(df, label="label", event_time="event_time", time_columns=[],
                      feature_columns=["it's noisy"], max_auc=0.6)
    late = df.withColumn("_features_as_of", F.col("event_time"))
    with pytest.raises(LeakageError, match=r"400 example\(s\) use data observed at or after their own time via "
                                           "'_features_as_of'"):
        audit_leakage(late, label="label", event_time="event_time", time_columns=["_features_as_of"],
                      feature_columns=["noise"], max_auc=0.99)
    # A feature declared `known: at_or_before` may use what is known at exactly t, not a second later.
    audit_leakage(late.withColumnRenamed("_features_as_of", "_known_at_or_before_g"), label="label",
                  event_time="event_time", time_columns=[], at_or_before=["_known_at_or_before_g"],
                  feature_columns=["noise"], max_auc=0.99)
    later = late.withColumn("_known_at_or_before_g", F.col("event_time") + F.expr("INTERVAL 1 SECOND"))
    with pytest.raises(LeakageError, match=r"400 example\(s\) use data observed after their own time via "
                                           r"'_known_at_or_before_g' \(must be at or before event_time\)"):
        audit_leakage(later, label="label", event_time="event_time", time_columns=[],
                      at_or_before=["_known_at_or_before_g"], feature_columns=["noise"], max_auc=0.99)


def test_a_categorical_feature_is_audited_by_its_frequency_encoding(spark: SparkSession, caplog) -> None:
    # "leaky" names each positive by a category of its own (a frequency of 1 row), the negatives
    # share two big ones: by frequency it separates the labels perfectly. "plain" does not.
    df = spark.range(300).select(
        (F.col("id") % 5 == 0).cast("int").alias("label"),
        F.timestamp_seconds(F.col("id") * 60).alias("event_time"),
        F.when(F.col("id") % 5 == 0, F.concat(F.lit("p"), F.col("id").cast("string")))
        .otherwise(F.when(F.col("id") % 2 == 0, "a").otherwise("b")).alias("leaky"),
        F.when(F.col("id") % 3 == 0, "x").when(F.col("id") % 3 == 1, "y").otherwise(None).alias("plain"),
    )
    rows = df.collect()

    def frequency_oracle(column: str) -> float:  # every (positive, negative) pair on encoded values
        counts: dict[object, int] = {}
        for r in rows:
            counts[r[column]] = counts.get(r[column], 0) + 1
        pos = [counts[r[column]] for r in rows if r["label"] == 1]
        neg = [counts[r[column]] for r in rows if r["label"] == 0]
        auc = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))
        return max(auc, 1 - auc)

    with caplog.at_level("INFO", logger="lakeboost.features.audit"):
        result = audit_leakage(df, label="label", event_time="event_time", time_columns=[], feature_columns=[],
                               categorical=["plain"], max_auc=0.9)
    assert result.aucs["plain"] == pytest.approx(frequency_oracle("plain"), abs=1e-12)
    assert "leakage audit passed: 1 features (1 categorical), largest single-feature ROC AUC" in caplog.text
    assert result.as_dict()["largest"] == {"feature": "plain", "auc": round(result.aucs["plain"], 6)}
    assert frequency_oracle("leaky") == 1.0
    with pytest.raises(LeakageError, match="feature 'leaky' alone predicts 'label' with ROC AUC 1.0000"):
        audit_leakage(df, label="label", event_time="event_time", time_columns=[], feature_columns=[],
                      categorical=["plain", "leaky"], max_auc=0.9)
