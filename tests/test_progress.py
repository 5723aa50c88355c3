"""What a run prints while it works and when it ends: progress per unit of work (a log line each on a
non-terminal, one updating line on a terminal), repeated warnings once, the human summary last."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import pytest
from lakeboost import logs, progress
from lakeboost.logs import ConsoleHandler, RepeatFilter, StepSummary
from lakeboost.pipeline import closing_lines
from lakeboost.progress import Progress, duration
from lakeboost.spark.streams import _report_batches
from lakeboost.tune.job import trial_note

from tests.conftest import demo_config


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _no_reporter_left() -> Any:
    yield
    assert not progress._active, "a reporter was left drawing"


def test_a_non_terminal_gets_one_line_per_unit_with_elapsed_and_time_left(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    caplog.set_level(logging.INFO, logger="lakeboost.progress")
    with Progress("tune", "trial", total=4, stream=io.StringIO(), clock=clock) as trials:
        for n, value in enumerate([0.61, 0.64], start=1):
            clock.now += 30
            trials.done(f"#{n}", f"valid aucpr {value}")
    assert [r.getMessage() for r in caplog.records] == [
        "tune: trial 1/4 done #1 (valid aucpr 0.61), 30s elapsed, ~1m30s left",
        "tune: trial 2/4 done #2 (valid aucpr 0.64), 1m00s elapsed, ~1m00s left",
    ]


def test_units_that_log_their_own_line_add_none_on_a_non_terminal(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lakeboost.progress")
    stream = io.StringIO()
    with Progress("features", "table", total=2, lines=False, stream=stream) as tables:
        tables.start("card_features")
        tables.done("card_features")
    assert caplog.records == [] and stream.getvalue() == ""


def test_a_terminal_gets_one_updating_line_that_log_lines_print_above(caplog: pytest.LogCaptureFixture) -> None:
    terminal, clock = Terminal(), Clock()
    caplog.set_level(logging.INFO, logger="lakeboost.progress")
    handler = ConsoleHandler(terminal)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("lakeboost.test_progress")
    logger.addHandler(handler)
    try:
        with Progress("features", "table", total=2, stream=terminal, clock=clock) as tables:
            tables.start("card_features")
            clock.now += 12
            logger.warning("a log line while the line is drawn")
            tables.done("card_features")
        shown = terminal.getvalue()
    finally:
        logger.removeHandler(handler)
    # Each draw returns to the line's start and clears it; the log line is printed on a cleared line.
    assert "\rfeatures: table 0/2 working on card_features, 0s elapsed\x1b[K" in shown
    assert "\r\x1b[Ka log line while the line is drawn\n\rfeatures: table 0/2 working on card_features, 12s " \
           "elapsed\x1b[K" in shown
    assert "\rfeatures: table 1/2 done card_features, 12s elapsed, ~12s left\x1b[K" in shown
    assert shown.endswith("\r\x1b[K")  # closed: the line is lifted, what it said last is one log line
    assert [r.getMessage() for r in caplog.records if r.name == "lakeboost.progress"] == [
        "features: table 1/2 done card_features, 12s elapsed, ~12s left"]


def test_durations_read_as_a_person_writes_them() -> None:
    assert [duration(s) for s in (0.4, 41, 232, 3725)] == ["0s", "41s", "3m52s", "1h02m"]


def test_a_repeated_line_prints_once_and_is_counted_at_the_end(caplog: pytest.LogCaptureFixture) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    repeats = RepeatFilter()
    handler.addFilter(repeats)
    logger = logging.getLogger("lakeboost.test_repeats")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        for _ in range(9):
            logger.warning("spark.sql.adaptive.enabled is not supported in streaming")
        logger.warning("another warning")
        logger.info("an info line")
        logger.info("an info line")
        logger.error("an error")
        logger.error("an error")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    assert stream.getvalue().splitlines() == ["spark.sql.adaptive.enabled is not supported in streaming",
                                              "another warning", "an info line", "an error", "an error"]
    assert repeats.repeats() == [
        ("lakeboost.test_repeats", "spark.sql.adaptive.enabled is not supported in streaming", 9),
        ("lakeboost.test_repeats", "an info line", 2)]
    summary = logging.LogRecord("lakeboost.summary", logging.INFO, __file__, 1, "{}", None, None)
    assert repeats.filter(summary) and repeats.filter(summary)  # a machine-read line is never dropped
    # Ten minutes on, a line still repeating prints again (a long-running stream shows it is alive).
    later = logging.LogRecord("lakeboost.test_repeats", logging.INFO, __file__, 1, "an info line", None, None)
    later.created += repeats.reprint_seconds
    assert repeats.filter(later)


def test_logging_set_up_turns_third_party_progress_bars_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        logs.configure_logging("INFO")
        import mlflow.environment_variables as mlflow_env

        assert mlflow_env.MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.get() is False
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_each_finished_micro_batch_is_reported_once() -> None:
    class Query:
        recentProgress = [  # noqa: N815 - pyspark's name
            {"batchId": 0, "numInputRows": 120, "durationMs": {"triggerExecution": 2100}},
            {"batchId": 1, "numInputRows": 80, "durationMs": {"triggerExecution": 900}},
            {"batchId": 1, "numInputRows": 0, "durationMs": {}},  # an idle event: no batch of its own
        ]

    reporter = Progress("ingest_transactions", "micro-batch", mode_="off")
    assert _report_batches(Query(), reporter, -1) == 1
    assert reporter.count == 2
    assert reporter.text() == "ingest_transactions: micro-batch 2 done (batch id 1: 80 rows, 0.9s), 0s elapsed"
    assert _report_batches(Query(), reporter, 1) == 1 and reporter.count == 2  # already reported


def test_a_trial_line_names_its_metric_and_the_best_so_far() -> None:
    trial = {"trial": 4, "metric": 0.6123, "rounds": 87, "seconds": 3.04, "error": None}
    best = {"trial": 2, "metric": 0.6401}
    assert trial_note(trial, best, "aucpr") == "valid aucpr 0.6123, 87 rounds, 3.0s; best 0.6401 (#2)"
    assert trial_note({**trial, "metric": None, "error": "boom"}, best, "aucpr") == "failed: boom"


def test_the_run_ends_with_the_report_the_alerts_the_model_and_its_run(tmp_path: Path) -> None:
    config = demo_config(tmp_path)
    overall = StepSummary("pipeline", seconds=300.0, details={
        "train": {"rows_read": 10, "rows_written": 0, "rows_quarantined": 0, "seconds": 60.0, "model_version": 3,
                  "run_id": "abc123", "metrics": {"test": {"aucpr": 0.61}}},
        "monitor": {"rows_read": 0, "rows_written": 40, "rows_quarantined": 0, "seconds": 50.0, "model_version": 3,
                    "windows": 4, "alerts": 2, "new_alerts": 1, "undelivered_alerts": 0, "retrain": None,
                    "report": "/lake/mlartifacts/monitor/report.html"},
    })
    lines = closing_lines(overall, config, "/lake/_runs/pipeline-20261205T170000Z.json")
    model = config.training.tracking.registered_model
    assert any(line.startswith(f"model {model} v3: test aucpr=0.6100 (run abc123)") for line in lines)
    assert "monitor: model v3, 4 window(s), 2 alert(s), 1 new; report /lake/mlartifacts/monitor/report.html" in lines
    assert lines[-1] == "summary (JSON): /lake/_runs/pipeline-20261205T170000Z.json"
    assert all(len(line) < 400 for line in lines)
