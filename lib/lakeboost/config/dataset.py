"""The dataset description: which table holds the events, their key, time, date and label.

One place in config says what the framework needs to know about a user's data. It travels
with the training set's lineage and with every registered model, so scoring, streaming,
promotion, replay and monitoring read the names the model was trained with, not module
constants.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from lakeboost.config.base import Frozen

# What a key or entity accepts in YAML (the JSON Schema's input type): one column or a list.
COLUMNS_INPUT = str | list[str]


def as_columns(value: object) -> object:
    """A column given as one string is a one-column key."""
    return (value,) if isinstance(value, str) else value


class PresenceLabel(Frozen):
    """Positive when a row of `table` matches the event's key (a chargeback for a payment).

    The row counts from `available_at` (when it was reported), not from the event's time;
    an event with no matching row is a negative only once it is older than
    `gold.training_set.label_maturity`, younger ones are left out.
    """

    kind: Literal["presence"]
    column: str  # the label column in training sets (0/1)
    table: str
    # The label table's columns matching `dataset.key`, in order; default: the same names.
    key: tuple[str, ...] | None = None
    available_at: str

    _key = field_validator("key", mode="before", json_schema_input_type=COLUMNS_INPUT)(as_columns)


class ValueLabel(Frozen):
    """A SQL expression over the event row (a threshold on an outcome, or a number to regress).

    `available_at` (SQL over the event row) says when the value becomes known: an example
    whose value is not known at the training set's cutoff, or is NULL, is left out.
    """

    kind: Literal["value"]
    column: str  # the label column in training sets
    expr: str
    available_at: str


Label = Annotated[PresenceLabel | ValueLabel, Field(discriminator="kind")]


class DatasetConfig(Frozen):
    """The events one model learns from and scores: one row per event."""

    events: str  # logical table, e.g. silver.<events>_integrated
    key: tuple[str, ...] = Field(min_length=1)  # one column or several (a composite natural key)
    event_time: str  # when the event happened: features use only what was known before it
    date_column: str  # the date partition of the event tables (incremental builds, daily scoring)
    label: Label
    # Columns of the events whose values arrive late (a delivery time, a settled amount): column ->
    # SQL over the event row saying when its value becomes known. They are never features of their
    # own event; windows over them (gold.features.*.outcome_windows) count a value from then on.
    # A value label is such a column too, under its own name (`label.column`).
    outcomes: dict[str, str] = Field(default_factory=dict)

    _key = field_validator("key", mode="before", json_schema_input_type=COLUMNS_INPUT)(as_columns)

    def outcome(self, column: str) -> tuple[str, str] | None:
        """(SQL of the value, SQL of when it becomes known) of a late-arriving column, else None."""
        if isinstance(self.label, ValueLabel) and column == self.label.column:
            return self.label.expr, self.label.available_at
        if column in self.outcomes:
            return f"`{column}`", self.outcomes[column]
        return None

    def late_columns(self) -> set[str]:
        """Every column whose value is not known at its own event's time."""
        return set(self.outcomes) | ({self.label.column} if isinstance(self.label, ValueLabel) else set())

    @property
    def label_column(self) -> str:
        return self.label.column

    @property
    def label_key(self) -> tuple[str, ...]:
        """The label table's columns matching `key` (presence labels)."""
        if isinstance(self.label, PresenceLabel):
            return self.label.key or self.key
        return self.key
