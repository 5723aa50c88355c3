"""What monitor alerts say, on hand-made records: one alert per (table, window, kind), the worst
subjects first with their metrics against their bars and the likely cause; decay names the fall."""

from __future__ import annotations

import datetime as dt

from lakeboost.config.monitoring import MonitorConfig
from lakeboost.monitor.records import MonitorRecord
from lakeboost.monitor.wording import DECAY_CAUSE, alerts_for, breaches_in_words

WEEK = dt.datetime(2026, 3, 2)
MONITOR = MonitorConfig(window="week")


def drift(subject: str, metric: str, value: float, *, cause: str | None = None) -> MonitorRecord:
    return MonitorRecord("gold.p", WEEK, 4, "feature_drift", subject, metric, value, 0.2, value >= 0.2, 500,
                         cause=cause if value >= 0.2 else None)


def test_drift_breaches_make_one_alert_worst_subject_first_with_its_cause() -> None:
    records = [drift("amount", "psi", 6.15, cause="the values moved higher than in training"),
               drift("amount", "ks", 0.75, cause="the values moved higher than in training"),
               drift("hour", "psi", 0.4), drift("country", "psi", 0.05)]

    [alert] = alerts_for(records, MONITOR, model_version=4, baseline=0.4, metric="pr_auc")

    assert (alert.kind, alert.table, alert.window_start, alert.subject) == ("data_drift", "gold.p", WEEK, "*")
    assert (alert.value, alert.threshold, alert.model_version) == (6.15, 0.2, 4)
    assert alert.message == ("gold.p, week of 2026-03-02: 2 breached: amount: PSI 6.150 >= 0.2, KS 0.750 >= 0.2; "
                             "likely cause: the values moved higher than in training | hour: PSI 0.400 >= 0.2")


def test_only_the_worst_subjects_are_named() -> None:
    words = breaches_in_words([drift(f"f{i}", "psi", 0.3 + i) for i in range(7)], most=2)
    assert words == "7 breached; the worst 2: f6: PSI 6.300 >= 0.2 | f5: PSI 5.300 >= 0.2"


def test_performance_decay_names_the_fall_from_training_and_quality_alerts_are_per_rule() -> None:
    decay = MonitorRecord("gold.p", WEEK, 4, "performance", "model", "pr_auc", 0.21, 0.3, True, 900,
                          cause=DECAY_CAUSE)
    rules = [MonitorRecord("silver", WEEK, None, "data_quality", f"tx:{rule}", "failure_rate", 0.5, 0.01, True,
                           10, cause="5 of 10 rows failed the rule") for rule in ("a", "b")]

    alerts = alerts_for([decay, *rules], MONITOR, model_version=4, baseline=0.4, metric="pr_auc")

    assert [(a.kind, a.subject, a.model_version) for a in alerts] == [
        ("data_quality", "tx:a", None), ("data_quality", "tx:b", None), ("performance_decay", "*", 4)]
    assert alerts[2].message == (f"gold.p, week of 2026-03-02: pr_auc 0.210 fell below 0.300 (training 0.400 - 25%); "
                                 f"likely cause: {DECAY_CAUSE}")
    assert alerts[0].message.endswith("tx:a: failure_rate 0.500 >= 0.01; likely cause: 5 of 10 rows failed the rule")


def test_a_binary_decay_alert_gives_the_windows_base_rate_and_pr_auc() -> None:
    decay = MonitorRecord("gold.p", WEEK, 4, "performance", "model", "roc_auc", 0.61, 0.68, True, 900,
                          cause=DECAY_CAUSE)
    shown = [MonitorRecord("gold.p", WEEK, 4, "performance", "model", metric, value, None, False, 900)
             for metric, value in (("base_rate", 0.012), ("pr_auc", 0.031), ("positives", 11.0))]
    [alert] = alerts_for([decay, *shown], MONITOR, model_version=4, baseline=0.85, metric="roc_auc")
    assert alert.message == ("gold.p, week of 2026-03-02: roc_auc 0.610 fell below 0.680 (training 0.850 - 25%); "
                             "base rate 1.20%, PR AUC 0.031 (not judged: it moves with the base rate); "
                             f"likely cause: {DECAY_CAUSE}")
