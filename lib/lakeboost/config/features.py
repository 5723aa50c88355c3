"""Gold layer configuration: declarative features and point-in-time training sets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lakeboost.config.base import Frozen
from lakeboost.config.dataset import COLUMNS_INPUT, as_columns
from lakeboost.config.durations import Duration
from lakeboost.config.integration import AsOfJoin

AUTO: Literal["auto"] = "auto"
AggName = Literal["count", "sum", "mean", "min", "max", "stddev", "distinct_count"]
# An outcome window's aggregates: those above over the outcomes known in the window, or
# `pending`, the number of the window's events (by event time) whose outcome is not known yet.
OutcomeAggName = Literal["count", "sum", "mean", "min", "max", "stddev", "distinct_count", "pending"]
# When a value that becomes known at exactly t may be used by an example at t. `before` (the
# default): known by t - 1s at the latest, so the hour that ends at t is not yet usable at t.
# `at_or_before`: usable at t, for a forecast made at the start of an hour from the hour that has
# just ended. The leakage audit holds each feature to its own boundary.
Known = Literal["before", "at_or_before"]


class WindowGroup(Frozen):
    """Aggregates over one entity's earlier events in trailing time windows.

    A window `w` for an event at time t covers events in [t - w, t): the event itself and
    anything at the same second are excluded, so a feature never sees its own row.
    `entity` is one column or several (a composite entity key).
    """

    entity: tuple[str, ...] = Field(min_length=1)
    windows: tuple[Duration, ...] = (Duration(86400), Duration(7 * 86400), Duration(30 * 86400))
    aggs: dict[str, tuple[AggName, ...]] = Field(default_factory=dict)
    count: bool = True  # number of events in each window
    last_value: tuple[str, ...] = ()  # previous event's value, plus `<col>_changed`
    time_since_last: bool = False

    _entity = field_validator("entity", mode="before", json_schema_input_type=COLUMNS_INPUT)(as_columns)


class LabelRateGroup(Frozen):
    """Share of an entity's recent events that were labelled positive, as known at the time.

    Only labels *reported* before the event count: a label filed next week is not known.
    The labels are the dataset's presence label (`dataset.label`) unless `labels` names
    another table, matched by `label_key` to the event key and known from its `available_at` column
    (the same word as `dataset.label.available_at`).
    """

    entity: tuple[str, ...] = Field(min_length=1)
    labels: str | None = None
    label_key: tuple[str, ...] | None = None
    available_at: str | None = None
    window: Duration = Duration(90 * 86400)
    prior_rate: float = Field(0.02, ge=0, le=1)
    prior_weight: float = Field(20.0, ge=0)  # pseudo-events: shrinks rates of small entities

    _entity = field_validator("entity", mode="before", json_schema_input_type=COLUMNS_INPUT)(as_columns)
    _label_key = field_validator("label_key", mode="before",
                                 json_schema_input_type=COLUMNS_INPUT | None)(as_columns)


class OutcomeWindowGroup(Frozen):
    """Aggregates over an entity's earlier outcomes, each counted from when it became known.

    `aggs` name late-arriving columns (`dataset.outcomes`, or a value label's column). At an event
    at time t, a window `w` covers the outcomes that *became known* in [t - w, t) (`known:
    before`, the default) or (t - w, t] (`known: at_or_before`; w seconds either way): an earlier
    order's delivery delay counts once it was delivered, never before (a window over event time
    would see deliveries that had not happened yet). Each column counts from its own availability time. An event never
    sees its own outcome: it is left out by the event's key.

    `count` adds `<group>_known_<w>`, the number of outcomes known in each window (one
    availability time for the group's columns; with several, use each column's `count`).
    `pending` (an aggregate) counts the window's events, by event time in [t - w, t), whose
    outcome was not known at t yet (NULL included): a backlog of orders placed and not shipped.
    `not_before_event`: an outcome stamped before its own event counts from the event's time (true,
    the default: a stamp before the event is taken for a clock skew) or from its stamp (false: a
    flight that left before its scheduled minute is known from when it left).
    """

    entity: tuple[str, ...] = Field(min_length=1)
    windows: tuple[Duration, ...] = (Duration(7 * 86400), Duration(30 * 86400))
    aggs: dict[str, tuple[OutcomeAggName, ...]] = Field(min_length=1)
    count: bool = True
    known: Known = "before"
    not_before_event: bool = True

    _entity = field_validator("entity", mode="before", json_schema_input_type=COLUMNS_INPUT)(as_columns)


class LagGroup(Frozen):
    """Values of the entity's event exactly a period before, as known at the time (a regular series).

    `columns` maps a column to the periods back: `{rentals: [1h, 24h, 168h]}` gives, at an event
    at time t, `<group>_rentals_lag_1h`, the value of the entity's event at exactly t - 1h (by
    the second), NULL when there is none or its value was not known at t. A plain column of an
    earlier event is known from its event's time; a late-arriving one (`dataset.outcomes`, a
    value label's column) from its own availability time: before t (`known: before`, the
    default) or at t at the latest (`known: at_or_before`). Several events of the entity at
    t - k: the one with the greatest key.
    """

    entity: tuple[str, ...] = Field(min_length=1)
    columns: dict[str, tuple[Duration, ...]] = Field(min_length=1)
    known: Known = "before"

    _entity = field_validator("entity", mode="before", json_schema_input_type=COLUMNS_INPUT)(as_columns)

    def longest(self) -> Duration:
        """The longest lag: how far back the group reads."""
        return max((k for lags in self.columns.values() for k in lags), default=Duration(0))


class PreviousGroup(Frozen):
    """Values of the entity's previous events (irregular events), as known at the time.

    `<group>_<col>_prev<i>` (i = 1..n) is the value of the entity's i-th event before t: events
    strictly before t (those at the same second are not previous), ordered by time then key,
    and at most `within` before t (a bounded look back, so incremental builds and stream scoring
    reproduce it); NULL when there is none or its value was not known at t (`known`, as for lags).
    """

    entity: tuple[str, ...] = Field(min_length=1)
    columns: tuple[str, ...] = Field(min_length=1)
    n: int = Field(1, ge=1)
    within: Duration = Duration(30 * 86400)
    known: Known = "before"

    _entity = field_validator("entity", mode="before", json_schema_input_type=COLUMNS_INPUT)(as_columns)


class CustomFeature(Frozen):
    """A registered feature function and the keyword arguments it is called with (the columns
    it reads, say), so one function serves any dataset's names.

    `lookback`: how far back in time the function reads other events (a duration, e.g. "7d";
    none when it reads only the event's own row). Incremental builds recompute that many more
    days after a change, and stream scoring reads that much history."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    lookback: Duration | None = None


def _custom_entry(value: object) -> object:
    """`[local_hour]` is shorthand for `[{name: local_hour}]`."""
    if isinstance(value, (list, tuple)):
        return [{"name": v} if isinstance(v, str) else v for v in value]
    return value


class FeatureSetConfig(Frozen):
    """One gold feature table: one row per event of `dataset.events`, partitioned by its date."""

    passthrough: tuple[str, ...] = ()  # the event's own attributes, known at its time
    groups: dict[str, WindowGroup] = Field(default_factory=dict)
    label_rates: dict[str, LabelRateGroup] = Field(default_factory=dict)
    outcome_windows: dict[str, OutcomeWindowGroup] = Field(default_factory=dict)
    # Values of the entity's event a period before (lags) and of its previous events (previous).
    lags: dict[str, LagGroup] = Field(default_factory=dict)
    previous: dict[str, PreviousGroup] = Field(default_factory=dict)
    ratios: dict[str, str] = Field(default_factory=dict)  # name -> SQL over the features
    # Functions registered with lakeboost.plugins.feature, run after the declarative features.
    custom: tuple[CustomFeature, ...] = ()

    _custom = field_validator("custom", mode="before",
                              json_schema_input_type=list[str | CustomFeature])(_custom_entry)

    def entities(self) -> list[str]:
        """Every entity column the windows, label rates, lags and previous events partition by, sorted."""
        return sorted({c for g in self.groups.values() for c in g.entity}
                      | {c for g in self.label_rates.values() for c in g.entity}
                      | {c for g in self.outcome_windows.values() for c in g.entity}
                      | {c for g in self.lags.values() for c in g.entity}
                      | {c for g in self.previous.values() for c in g.entity})

    def lookback(self) -> timedelta:
        """The furthest back any feature of the set reads: its longest window, lag, `within` or lookback."""
        windows = [w for g in self.groups.values() for w in g.windows]
        windows += [g.window for g in self.label_rates.values()]
        windows += [w for g in self.outcome_windows.values() for w in g.windows]
        windows += [g.longest() for g in self.lags.values()]
        windows += [g.within for g in self.previous.values()]
        windows += [c.lookback for c in self.custom if c.lookback is not None]
        return max(windows, default=timedelta(0))

    def warm_up_reasons(self, label_delay: timedelta) -> dict[str, timedelta]:
        """Feature -> history it needs before its value is in steady state.

        A window needs its own length. A label rate or outcome window counts what became known
        in the window, so it also needs the time labels take to arrive (`label_delay`, the
        training set's label maturity): at the start of the history the events whose labels
        would be reported now had not happened yet.
        """
        needs: dict[str, timedelta] = {}
        for name, group in self.groups.items():
            for w in group.windows:
                needs[f"window {name} {w}"] = w
        for name, rate in self.label_rates.items():
            needs[f"label rate {name} {rate.window} + label maturity"] = rate.window + label_delay
        for name, outcome in self.outcome_windows.items():
            for w in outcome.windows:
                needs[f"outcome window {name} {w} + label maturity"] = w + label_delay
        for name, lag in self.lags.items():  # the value a period back is there from the start
            needs[f"lags {name} {lag.longest()}"] = lag.longest()
        for name, previous in self.previous.items():
            needs[f"previous {name} within {previous.within}"] = previous.within
        for custom in self.custom:
            if custom.lookback is not None:
                needs[f"custom {custom.name} lookback {custom.lookback}"] = custom.lookback
        return needs


class TrainingSetConfig(Frozen):
    features: str  # gold feature table (one row per event)
    # Presence labels: examples younger than this at the cutoff are left out (their label may
    # not have arrived; absence is a negative only once it is old enough). Value labels carry
    # their own availability time; this is then optional.
    label_maturity: Duration | None = None
    cutoff: str | None = None  # ISO timestamp; default: the latest event in the feature table
    # Leave out examples within this long of the feature table's first event: their windows
    # (a 30d count, say) are still filling, unlike those of any event scored later, so the model
    # would learn from feature values serving never sees, and the monitor would report the
    # difference as drift. `auto` (default): what the feature set needs (its longest window;
    # label rates and outcome windows plus the label maturity), resolved when the config loads.
    # `0s` keeps every example.
    warm_up: Duration | Literal["auto"] | None = AUTO
    # Point-in-time attributes (use `strict: true` and `time_as` so the audit checks them).
    as_of: tuple[AsOfJoin, ...] = ()
    exclude: tuple[str, ...] = ()  # columns never used as features (ids, raw times)
    categorical: tuple[str, ...] = ()
    # How the model sees a categorical column: `frequency` (its share of the training rows: one
    # number, so categories of equal frequency look alike) or `native` (a code per training
    # category, split on by xgboost's own categorical support; stored with the model, a category
    # unseen in training is scored as missing).
    categorical_encoding: Literal["frequency", "native"] = "frequency"
    max_single_feature_auc: float = Field(0.98, gt=0.5, le=1.0)

    def resolved_warm_up(self) -> timedelta:
        """The resolved warm-up; ValueError while it is still `auto` (resolved by LakeboostConfig)."""
        if isinstance(self.warm_up, str):  # `auto`
            raise ValueError("gold.training_set.warm_up is `auto`: it is resolved from the feature set when the "
                             "whole config loads; give a duration (or 0s) when building a TrainingSetConfig alone")
        return self.warm_up or timedelta(0)


def resolve_warm_up(training_set: TrainingSetConfig, features: dict[str, FeatureSetConfig]) -> TrainingSetConfig:
    """`warm_up: auto` replaced by the training set's feature set's needs."""
    if training_set.warm_up != AUTO:
        return training_set
    feature_set = features.get(training_set.features.removeprefix("gold."))
    needs = feature_set.warm_up_reasons(training_set.label_maturity or timedelta(0)) if feature_set else {}
    needed = int(max(needs.values(), default=timedelta(0)).total_seconds())
    # Spelled in seconds, as it always was: the digest of a stored training set covers it.
    return training_set.model_copy(update={"warm_up": Duration(needed, f"{needed}s")})


class MaintenanceConfig(Frozen):
    tables: tuple[str, ...] = ()
    zorder: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    vacuum_retention_hours: int = 168  # Delta's safe default: 7 days
    # How long bronze keeps raw personal data (the source columns of every silver table's `pii`
    # rules, and bronze.quarantine's raw records) after ingestion; `maintain` blanks it after
    # that, and VACUUM removes the older files `vacuum_retention_hours` later. None: kept.
    bronze_pii_retention: Duration | None = None


class GoldConfig(Frozen):
    features: dict[str, FeatureSetConfig] = Field(default_factory=dict)
    training_set: TrainingSetConfig | None = None
    maintenance: MaintenanceConfig = MaintenanceConfig()

    @model_validator(mode="after")
    def _resolve_warm_up(self) -> GoldConfig:
        if self.training_set is not None and self.training_set.warm_up == AUTO:
            # Frozen model: the one derived field is set once, here, before anyone reads it.
            object.__setattr__(self, "training_set", resolve_warm_up(self.training_set, self.features))
        return self
