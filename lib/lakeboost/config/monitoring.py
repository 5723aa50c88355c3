"""Streaming scoring and monitoring: where live events come from, thresholds, alert hooks."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_serializer, model_validator

from lakeboost.config.base import Frozen
from lakeboost.config.durations import Duration
from lakeboost.redact import redact_webhook


class StreamScoringConfig(Frozen):
    """Live events from a bronze table, scored with the champion as they arrive."""

    source: str  # a bronze table the live events land in
    # The silver table whose column contract, expectations and PII rules the live events obey:
    # the events are refined exactly as the batch events they will later be compared with.
    contract: str
    # The integration (silver.integrations) the live events go through, as the batch events
    # did on their way to `dataset.events`; None when the dataset's events are not integrated.
    integration: str | None = None
    # Contract columns the live source does not carry (NULL for every live event). Any other
    # contract column missing from the live source stops stream scoring before it scores.
    absent_columns: tuple[str, ...] = ()
    # Refined live events: the feature history of later micro-batches (windows reach back here).
    events_table: str
    predictions_table: str = "gold.stream_predictions"
    quarantine_table: str | None = None  # default: storage.tables.silver_quarantine
    # Bounds a catch-up micro-batch; live files arrive a few at a time anyway.
    max_files_per_trigger: int = Field(10, ge=1)
    interval: Duration = Duration(5)  # between micro-batches (--continuous)
    # Shuffle partitions of a micro-batch's joins and windows (spark.sql.shuffle.partitions for
    # the scoring query and, with adaptive execution off, for the catalog's session during the
    # batch: nothing coalesces them): a batch of a few live events and their entities' history
    # fits in a few, and each partition is a task per shuffle. None keeps the session's (or the
    # checkpoint's) value and its adaptive execution.
    shuffle_partitions: int | None = Field(2, ge=1)


class ScoringConfig(Frozen):
    predictions_table: str = "gold.predictions"
    stream: StreamScoringConfig | None = None
    # What the score step (alone or in the pipeline) scores when no date is named on its command
    # line: `latest` (the latest date partition: a daily run), `all` (every partition: a backfill
    # after a promotion), or `range` (`since` .. `until`, both inclusive, either open).
    dates: Literal["latest", "all", "range"] = "latest"
    # With `latest`: this many calendar days ending at the latest date partition (28: the latest
    # four weeks, re-scored every run, so a monitor sees whole windows whose labels mature).
    # Ignored by `all` and `range`, so `--set scoring.dates=all` backfills a config that sets it.
    latest_days: int = Field(1, ge=1)
    since: dt.date | None = None
    until: dt.date | None = None

    @model_validator(mode="after")
    def _range(self) -> ScoringConfig:
        if self.dates == "range" and self.since is None and self.until is None:
            raise ValueError("scoring.dates: range needs scoring.since, scoring.until or both (ISO dates)")
        if self.dates != "range" and (self.since is not None or self.until is not None):
            raise ValueError(f"scoring.since / scoring.until apply to `dates: range` only (dates is {self.dates!r})")
        if self.since is not None and self.until is not None and self.since > self.until:
            raise ValueError(f"scoring.since {self.since} is after scoring.until {self.until}")
        return self


class AlertHook(Frozen):
    """Called for every alert: a log line, an HTTP POST of the alert as JSON, or a command."""

    kind: Literal["log", "webhook", "command"] = "log"
    url: str | None = None
    # argv; the alert JSON arrives on stdin. Secrets belong in the environment, not here.
    command: tuple[str, ...] = ()
    timeout_seconds: float = Field(10, gt=0)

    @field_serializer("url", when_used="json")
    def _url_without_secret(self, url: str | None) -> str | None:
        # A webhook URL is often itself the credential (Slack's, Teams'): never recorded whole.
        return None if url is None else redact_webhook(url)

    @model_validator(mode="after")
    def _target(self) -> AlertHook:
        if self.kind == "webhook" and not self.url:
            raise ValueError("a webhook hook needs `url`")
        if self.kind == "command" and not self.command:
            raise ValueError("a command hook needs `command` (a list of arguments)")
        return self


class MonitorConfig(Frozen):
    table: str = "gold.monitoring"
    alerts_table: str = "gold.monitoring_alerts"
    # Scoring windows: predictions are grouped by the day (or hour) of their event time.
    window: Literal["hour", "day", "week"] = "day"
    # Which predictions to watch: batch scoring and/or streaming scoring.
    # Which predictions to watch (batch and/or stream predictions tables); default: every one
    # the config writes.
    predictions: tuple[str, ...] | None = None
    reference_sample_rows: int = Field(200_000, ge=100)
    # Fewer rows make PSI noisy (its expected value on identical data is about bins / rows).
    min_window_rows: int = Field(200, ge=1)
    # PSI >= 0.2 is the usual "significant shift"; KS on the same binned edges.
    psi_threshold: float = Field(0.2, gt=0)
    ks_threshold: float = Field(0.2, gt=0, le=1)
    prediction_psi_threshold: float = Field(0.2, gt=0)
    # The bars rise, per feature, to the PSI / KS between two spans of the training data as large
    # as a window (this quantile over all pairs; 1.0: the largest): a feature shared by many rows
    # (a merchant's 30-day rate, 40 merchants) varies that much within training with nothing
    # drifting, and the model learnt across it. None: the fixed thresholds alone.
    noise_quantile: float | None = Field(1.0, gt=0, le=1)
    # Performance decay: alert when the window's metric is this much (relative) worse than at training:
    # a fall of PR AUC or accuracy, a rise of RMSE, MAE or log loss.
    metric: str | None = None  # default: the objective's (lakeboost.config.metrics)
    max_relative_drop: float = Field(0.25, gt=0, lt=1)
    # Regression models: fit a loss model on the validation split when training (about a second on
    # the driver, stored with the model), so the monitor estimates each window's MAE and RMSE
    # before its labels arrive, and alerts on the estimate (lakeboost.model.loss).
    estimate_loss: bool = True
    # A window is judged only once its labels had time to arrive and enough of them exist.
    # Default: gold.training_set.label_maturity when set, else 30d (LakeboostConfig resolves it);
    # never shorter than the training set's (lakeboost.config.validate).
    label_maturity: Duration | None = None
    min_labelled_rows: int = Field(200, ge=1)
    # PR AUC on a handful of positives is noise: a window needs this many before it is judged.
    min_positive_labels: int = Field(30, ge=1)
    # A window with this share fewer rows than training's windows of its span (pro rata where the
    # table covers part of it) is a breach named missing upstream data; higher where training's own
    # windows fell further below their median. None: row counts are recorded, not judged.
    max_row_drop: float | None = Field(0.5, gt=0, lt=1)
    # Columns (model inputs) to break every window into: rows, the score's drift and the model's
    # performance per value (shown, not judged: a small slice's noise is not an alert).
    slices: tuple[str, ...] = ()
    # Per slice column: its most frequent values in the training set keep their names; the rest
    # are `other`.
    max_slice_values: int = Field(10, ge=1)
    # Data-quality trend: alert when a rule's failure rate over a run exceeds this.
    max_failure_rate: float = Field(0.01, ge=0, le=1)
    hooks: tuple[AlertHook, ...] = (AlertHook(),)
    # On a drift or decay alert, run the retraining steps (features, train, promote).
    retrain_on_alert: bool = False
