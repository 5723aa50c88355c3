"""One feature set, computed from its source rows: window groups, label rates, custom, ratios."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeboost.config.features import FeatureSetConfig
from lakeboost.features import registry
from lakeboost.features.label_rates import with_label_rate
from lakeboost.features.windows import with_window_features

FEATURES_AS_OF = "_features_as_of"


def compute_features(events: DataFrame, *, features: FeatureSetConfig,
                     labels: dict[str, DataFrame] | None = None, lookup: DataFrame | None = None) -> DataFrame:
    """One row per event: key, time, date, entities, passthrough columns and all features.

    `_features_as_of` is the last instant whose data the features may use (one second before
    the event): the training-set leakage audit checks it against the label time.
    `lookup` is the unfiltered source, for mapping labels to entities when `events` is a
    date range (incremental builds).
    """
    entities = sorted({g.entity for g in features.groups.values()} | {g.entity for g in features.label_rates.values()})
    base_columns = [features.event_key, features.timestamp, features.date_column, *entities, *features.passthrough]
    out = events.select(*dict.fromkeys(base_columns))
    out = with_window_features(out, groups=features.groups, timestamp=features.timestamp)
    for name, group in features.label_rates.items():
        out = with_label_rate(out, (labels or {})[name], name=name, group=group,
                              event_key=features.event_key, timestamp=features.timestamp, lookup=lookup)
    for name in features.custom:
        out = out.transform(registry.resolve(name))
    for name, expr in features.ratios.items():
        out = out.withColumn(name, F.expr(expr))
    return out.withColumn(FEATURES_AS_OF, F.col(features.timestamp) - F.expr("INTERVAL 1 SECOND"))
