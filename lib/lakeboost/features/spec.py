"""What a feature table is built from: the parts of the config it depends on, and their digest.

A feature table records the digest of the spec that produced it next to the input versions it
read (`gold.feature_state`); a different digest on the next run means the table is rebuilt in
full, whatever the inputs did. The spec is the typed config as parsed (shorthands expanded,
defaults filled), so an edit that changes nothing parses to the same text. Mapping order is
kept: ratios and custom functions run in the order given, so their order is part of the spec.
Fields left at their defaults are left out, so that a field a later version adds (with a default
that keeps what the table was) does not rebuild every table on upgrade.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.features import FeatureSetConfig
from lakeboost.features.compute import FEATURES_AS_OF
from lakeboost.features.label_rates import label_source
from lakeboost.features.lags import lag_columns, previous_columns
from lakeboost.features.outcomes import KNOWN_AS_OF, known_column


def feature_spec(features: FeatureSetConfig, dataset: DatasetConfig) -> dict[str, Any]:
    """The feature set's config and the dataset fields its computation reads: the events
    table, key, times, each outcome window's (and lag's, previous event's) value and
    availability SQL, each label rate's label table, key and report time."""
    outcomes = {name: {column: list(dataset.outcome(column) or ()) for column in group.aggs}
                for name, group in features.outcome_windows.items()}
    label_rates = {name: dataclasses.asdict(label_source(group, dataset))
                   for name, group in features.label_rates.items()}
    spec = {
        "features": features.model_dump(mode="json", exclude_defaults=True),
        # The events table, key, event time and date column, in that order.
        "dataset": [dataset.events, list(dataset.key), dataset.event_time, dataset.date_column],
        "outcomes": outcomes,
        "label_rates": json.loads(json.dumps(label_rates)),  # tuples as lists, as read back
    }
    # The value and availability SQL of the late-arriving columns lags and previous events read
    # (only when there are such groups: the digests of other tables stay as they were).
    lagged = {f"{kind}.{name}": {column: list(dataset.outcome(column) or ()) for column in columns
                                 if dataset.outcome(column) is not None}
              for kind, groups in (("lags", {n: list(g.columns) for n, g in features.lags.items()}),
                                   ("previous", {n: list(g.columns) for n, g in features.previous.items()}))
              for name, columns in groups.items()}
    if lagged:
        spec["lag_outcomes"] = lagged
    return spec


def spec_text(spec: dict[str, Any]) -> str:
    """The canonical text of a spec (what the digest is of, and what the state keeps)."""
    return json.dumps(spec, separators=(",", ":"), ensure_ascii=True)


def spec_digest(spec: dict[str, Any]) -> str:
    return hashlib.sha256(spec_text(spec).encode()).hexdigest()[:16]


def spec_changes(old: Any, new: Any, path: str = "", *, limit: int = 5) -> list[str]:
    """Dotted paths where two specs differ (at most `limit`), for the log line saying why a
    table is rebuilt: `features.groups.customer.windows`, say."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[str] = []
        for key in dict.fromkeys([*old, *new]):
            if old.get(key, ...) != new.get(key, ...):
                changes += spec_changes(old.get(key), new.get(key), f"{path}.{key}" if path else str(key),
                                        limit=limit)
        if not changes and list(old) != list(new):
            changes = [f"{path or 'spec'} (order)"]
        return changes[:limit]
    return [path or "spec"] if old != new else []


def feature_table_columns(features: FeatureSetConfig, dataset: DatasetConfig) -> list[str]:
    """The columns a build of `features` writes, by the names windows.py, outcomes.py,
    label_rates.py and lags.py give them (tests/features/test_spec.py holds them to a real build), except
    those custom functions add, which only running them tells."""
    columns = [*dataset.key, dataset.event_time, dataset.date_column, *features.entities(), *features.passthrough]
    for name, group in features.groups.items():
        for w in group.windows:
            columns += [f"{name}_count_{w}"] if group.count else []
            columns += [f"{name}_{column}_{agg}_{w}" for column, aggs in group.aggs.items() for agg in aggs]
        for column in group.last_value:
            columns += [f"{name}_prev_{column}", f"{name}_{column}_changed"]
        columns += [f"{name}_seconds_since_last"] if group.time_since_last else []
    for name, outcome in features.outcome_windows.items():
        for w in outcome.windows:
            columns += [f"{name}_known_{w}"] if outcome.count else []
            columns += [f"{name}_{column}_{agg}_{w}" for column, aggs in outcome.aggs.items() for agg in aggs]
        columns.append(known_column(name, outcome.known))
    for name, rate in features.label_rates.items():
        columns += [f"{name}_labels_{rate.window}", f"{name}_events_{rate.window}", f"{KNOWN_AS_OF}{name}",
                    f"{name}_rate_{rate.window}"]
    for name, lag in features.lags.items():
        columns += [*lag_columns(name, lag), known_column(name, lag.known)]
    for name, previous in features.previous.items():
        columns += [*previous_columns(name, previous), known_column(name, previous.known)]
    return list(dict.fromkeys([*columns, *features.ratios, FEATURES_AS_OF]))
