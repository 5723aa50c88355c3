"""The monitor's estimated performance in its records: judged only while labels are pending."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import numpy as np
import pandas as pd
from lakeboost.config.monitoring import MonitorConfig
from lakeboost.monitor.measure import _estimated_records
from lakeboost.monitor.profile import Slicer
from lakeboost.monitor.records import MonitorRecord
from pyspark.sql import SparkSession

WEEKS = [dt.datetime(2026, 3, 2), dt.datetime(2026, 3, 9), dt.datetime(2026, 3, 16)]


def _record(window, kind, subject, metric, value, threshold, status="ok", cause=None) -> MonitorRecord:
    breached = value is not None and threshold is not None and value >= threshold
    return MonitorRecord("gold.p", window, 1, kind, subject, metric, value, threshold, breached, 0, status,
                         cause if breached else None)


def test_an_estimated_decay_alerts_while_labels_are_pending_and_never_after(spark: SparkSession) -> None:
    rng = np.random.default_rng(3)
    rows = []
    for i, week in enumerate(WEEKS):
        # Weeks 1 and 3: scores that separate (a calibrated model ranks well: expected ROC AUC ~0.9);
        # week 2: every score near the base rate (the inputs moved where the model cannot rank).
        scores = rng.beta(0.4, 4.0, 3000) if i != 1 else rng.uniform(0.08, 0.10, 3000)
        rows += [(week + dt.timedelta(minutes=int(m)), float(s), "DE" if m % 3 else "FR")
                 for m, s in zip(rng.integers(0, 7 * 24 * 60, 3000), scores, strict=True)]
    current = spark.createDataFrame(pd.DataFrame(rows, columns=["event_time", "score", "country"]))
    champion = SimpleNamespace(dataset=SimpleNamespace(event_time="event_time"), meta=SimpleNamespace(threshold=0.3))

    records = _estimated_records(current, champion, MonitorConfig(window="week"), _record, bound=0.7,
                                 matured={WEEKS[0], WEEKS[1]}, slices=[Slicer("country", ("DE",))])
    auc = {(r.window_start, r.slice): r for r in records if r.metric == "roc_auc"}
    assert set(auc) == {(w, s) for w in WEEKS for s in ("all", "country=DE", "country=other")}
    # Judged only where labels are pending (week 3) and on every row; matured weeks and slices shown.
    assert [(w, r.threshold, r.breached) for (w, s), r in sorted(auc.items()) if s == "all"] == [
        (WEEKS[0], None, False), (WEEKS[1], None, False), (WEEKS[2], 0.7, False)]
    assert auc[(WEEKS[1], "all")].value < 0.6 < 0.85 < auc[(WEEKS[0], "all")].value
    # The same flat week, its labels still pending: even its interval's top is below the bound.
    pending = _estimated_records(current, champion, MonitorConfig(window="week"), _record, bound=0.7,
                                 matured={WEEKS[0]}, slices=())
    flat = next(r for r in pending if r.metric == "roc_auc" and r.window_start == WEEKS[1])
    high = next(r for r in pending if r.metric == "roc_auc_high" and r.window_start == WEEKS[1])
    assert flat.breached and high.value < 0.7 and flat.status == "pending_labels"
    assert flat.cause.startswith("the calibrated scores alone")
    assert {r.metric for r in pending} >= {"roc_auc", "pr_auc", "precision", "recall", "base_rate",
                                           "roc_auc_low", "roc_auc_high"}
