"""What a feature table is built from: the parts of the config it depends on, and their digest.

A feature table records the digest of the spec that produced it next to the input versions it
read (`gold.feature_state`); a different digest on the next run means the table is rebuilt in
full, whatever the inputs did. The spec is the typed config as parsed (shorthands expanded,
defaults filled), so an edit that changes nothing parses to the same text. Mapping order is
kept: ratios and custom functions run in the order given, so their order is part of the spec.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.features import FeatureSetConfig
from lakeboost.features.label_rates import label_source


def feature_spec(features: FeatureSetConfig, dataset: DatasetConfig) -> dict[str, Any]:
    """The feature set's config and the dataset fields its computation reads: the events
    table, key, times, each outcome window's value and availability SQL, each label rate's
    label table, key and report time."""
    outcomes = {name: {column: list(dataset.outcome(column) or ()) for column in group.aggs}
                for name, group in features.outcome_windows.items()}
    label_rates = {name: dataclasses.asdict(label_source(group, dataset))
                   for name, group in features.label_rates.items()}
    return {
        "features": features.model_dump(mode="json"),
        # The events table, key, event time and date column, in that order.
        "dataset": [dataset.events, list(dataset.key), dataset.event_time, dataset.date_column],
        "outcomes": outcomes,
        "label_rates": json.loads(json.dumps(label_rates)),  # tuples as lists, as read back
    }


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
