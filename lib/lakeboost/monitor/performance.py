"""Model performance per scoring window once the (late) labels have arrived.

A prediction's label is known when it has become available by the monitoring time (`as_of`,
see features.training_set.known_labels); before that a presence label counts as negative,
which is only safe once the window is older than the label maturity. Younger windows are reported as `pending_labels`,
windows with too few labels or positives as `too_few_labels`, never as a metric.

Metrics are binned (1,000 equal-width score buckets, the same binning as the training-time
`*_binned` metrics) so that every window is evaluated in one groupBy over (window, bucket).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakeboost.train.evaluate import LABEL, curve_from_buckets, pr_points, roc_points, score_bucket, trapezoid

BINS = 1000
WINDOW = "window_start"


def window_start(event_time: str, window: str) -> Column:
    """The start of the day (or hour) an event falls in: the scoring window it is judged in."""
    return F.date_trunc(window, F.col(event_time))


@dataclass(frozen=True)
class WindowPerformance:
    window_start: dt.datetime
    rows: int
    positives: int
    status: str  # evaluated | pending_labels | too_few_labels
    pr_auc: float | None
    roc_auc: float | None


def performance_by_window(labelled: DataFrame, *, event_time: str, window: str, as_of: dt.datetime,
                          maturity: dt.timedelta, min_rows: int, min_positives: int) -> list[WindowPerformance]:
    """PR and ROC AUC per window of `labelled` (columns `event_time`, `score` and the 0/1 `LABEL`)."""
    rows = (
        labelled.groupBy(window_start(event_time, window).alias(WINDOW), score_bucket("score", BINS).alias("b"))
        .agg(F.sum(LABEL).alias("pos"), F.sum(1 - F.col(LABEL)).alias("neg"))
        .collect()  # windows x at most 1,000 buckets
    )
    buckets: dict[dt.datetime, list[tuple[int, int, int]]] = {}
    for row in rows:
        buckets.setdefault(row[WINDOW], []).append((int(row["b"]), int(row["pos"]), int(row["neg"])))
    span = {"hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1), "week": dt.timedelta(weeks=1)}[window]
    results = []
    for start in sorted(buckets):
        curve = curve_from_buckets(buckets[start], bins=BINS)
        total, positives = curve.positives + curve.negatives, curve.positives
        if start + span + maturity > as_of:
            status = "pending_labels"
        elif total < min_rows or positives < min_positives or curve.negatives == 0:
            status = "too_few_labels"
        else:
            status = "evaluated"
        evaluated = status == "evaluated"
        results.append(WindowPerformance(
            start, total, positives, status,
            trapezoid(*pr_points(curve)) if evaluated else None,
            trapezoid(*roc_points(curve)) if evaluated else None,
        ))
    return results
