"""Gold layer configuration: declarative features and point-in-time training sets."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from lakeboost.config.base import Frozen

AggName = Literal["count", "sum", "mean", "min", "max", "stddev", "distinct_count"]
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> int:
    """'30d' -> 2592000. Raises ValueError naming the accepted forms."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"duration {text!r} must look like 90s, 15m, 1h or 30d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


class WindowGroup(Frozen):
    """Aggregates over one entity's earlier events in trailing time windows.

    A window `w` for an event at time t covers events in [t - w, t): the event itself and
    anything at the same second are excluded, so a feature never sees its own row.
    """

    entity: str
    windows: tuple[str, ...] = ("1d", "7d", "30d")
    aggs: dict[str, tuple[AggName, ...]] = Field(default_factory=dict)
    count: bool = True  # number of events in each window
    last_value: tuple[str, ...] = ()  # previous event's value, plus `<col>_changed`
    time_since_last: bool = False

    @field_validator("windows")
    @classmethod
    def _windows(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for window in value:
            duration_seconds(window)
        return value


class LabelRateGroup(Frozen):
    """Share of an entity's recent events that were labelled positive, as known at the time.

    Only labels *reported* before the event count: a chargeback filed next week is not known.
    """

    entity: str
    labels: str  # logical table with one row per positive label
    label_key: str  # key joining a label to its event (txn_id)
    reported_at: str  # when the label became known
    window: str = "90d"
    prior_rate: float = Field(0.02, ge=0, le=1)
    prior_weight: float = Field(20.0, ge=0)  # pseudo-events: shrinks rates of small merchants

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        duration_seconds(value)
        return value


class FeatureSetConfig(Frozen):
    """One gold feature table: one row per event, partitioned by its date."""

    source: str
    event_key: str
    timestamp: str
    date_column: str = "event_date"
    passthrough: tuple[str, ...] = ()  # the event's own attributes, known at its time
    groups: dict[str, WindowGroup] = Field(default_factory=dict)
    label_rates: dict[str, LabelRateGroup] = Field(default_factory=dict)
    ratios: dict[str, str] = Field(default_factory=dict)  # name -> SQL over the features
    custom: tuple[str, ...] = ()  # names registered with lakeboost.features.registry


class LabelConfig(Frozen):
    table: str
    key: str  # joins to the feature table's event key
    available_at: str  # when the label became known (report time), not when the event happened


class AsOfFeatures(Frozen):
    """Attributes of an entity from a versioned table, as of strictly before the example's time."""

    table: str
    entity: str
    timestamp: str
    columns: tuple[str, ...]
    max_age: str | None = None
    prefix: str = ""


class TrainingSetConfig(Frozen):
    features: str  # gold feature table (one row per event)
    labels: LabelConfig
    # Examples younger than this at the cutoff are left out: their labels may not have arrived.
    label_maturity: str = "30d"
    cutoff: str | None = None  # ISO timestamp; default: the latest event in the feature table
    # Leave out examples within this long of the feature table's first event: their windows
    # (a 30d count, say) are still filling, unlike those of any event scored later, so the model
    # would learn from feature values serving never sees (set it to the longest window).
    warm_up: str | None = None
    as_of: tuple[AsOfFeatures, ...] = ()
    exclude: tuple[str, ...] = ()  # columns never used as features (ids, raw times)
    categorical: tuple[str, ...] = ()
    max_single_feature_auc: float = Field(0.98, gt=0.5, le=1.0)


class MaintenanceConfig(Frozen):
    tables: tuple[str, ...] = ()
    zorder: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    vacuum_retention_hours: int = 168  # Delta's safe default: 7 days


class GoldConfig(Frozen):
    features: dict[str, FeatureSetConfig] = Field(default_factory=dict)
    training_set: TrainingSetConfig | None = None
    maintenance: MaintenanceConfig = MaintenanceConfig()
