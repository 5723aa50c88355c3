"""One feature set, computed from its source rows: window groups, outcome windows, label rates,
lags and previous events, custom, ratios."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType

from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.features import FeatureSetConfig
from lakeboost.features.label_rates import label_source, with_label_rate
from lakeboost.features.lags import with_lags, with_previous
from lakeboost.features.outcomes import with_outcome_windows
from lakeboost.features.point import with_point_label_rate, with_point_window_features
from lakeboost.features.windows import with_window_features
from lakeboost.plugins import resolve_feature

FEATURES_AS_OF = "_features_as_of"


def compute_features(events: DataFrame, *, features: FeatureSetConfig, dataset: DatasetConfig,
                     labels: dict[str, DataFrame] | None = None, lookup: DataFrame | None = None) -> DataFrame:
    """One row per event: key, time, date, entities, passthrough columns and all features.

    `_features_as_of` is the last instant whose data the features may use (one second before
    the event), and `_known_as_of_<group>` the latest outcome or label an outcome window or
    label rate counted: the training-set leakage audit checks both against the event time.
    `lookup` is the unfiltered source, for mapping labels to entities and reading outcomes
    when `events` is a date range (incremental builds). `labels`: label-rate name -> its
    labels table.
    """
    base_columns = [*dataset.key, dataset.event_time, dataset.date_column, *features.entities(),
                    *features.passthrough]
    out = events.select(*dict.fromkeys(base_columns))
    out = with_window_features(out, groups=features.groups, timestamp=dataset.event_time)
    for name, outcome_group in features.outcome_windows.items():
        out = with_outcome_windows(out, events if lookup is None else lookup, name=name, group=outcome_group,
                                   dataset=dataset)
    for name, group in features.label_rates.items():
        out = with_label_rate(out, (labels or {})[name], name=name, group=group,
                              source=label_source(group, dataset), event_key=dataset.key,
                              timestamp=dataset.event_time, lookup=lookup)
    out = _with_lags(out, lambda window: events if lookup is None else lookup, features=features, dataset=dataset)
    return _finish(out, features=features, dataset=dataset)


def _with_lags(out: DataFrame, source: Callable[[dt.timedelta], DataFrame], *, features: FeatureSetConfig,
               dataset: DatasetConfig) -> DataFrame:
    """Lag and previous groups, each reading `source(how far back it looks)` for earlier events."""
    for name, lag in features.lags.items():
        out = with_lags(out, source(lag.longest()), name=name, group=lag, dataset=dataset)
    for name, previous in features.previous.items():
        out = with_previous(out, source(previous.within), name=name, group=previous, dataset=dataset)
    return out


def compute_features_at(targets: DataFrame, history: DataFrame, *, features: FeatureSetConfig,
                        dataset: DatasetConfig, labels: dict[str, DataFrame], lookup: DataFrame,
                        first: dt.datetime | None = None) -> DataFrame:
    """`compute_features`' rows for the events `targets` only, computed from `history` (every
    event in the targets' frames: `reach` before the first of them to the last) and `lookup`
    (every event, for outcomes and labels), without window functions over the history
    (`point.py`): an incremental build's cost then follows the rows it changes. `first`: no
    target is older (each group then reads only its own window's reach of the history)."""
    base_columns = [*dataset.key, dataset.event_time, dataset.date_column, *features.entities(),
                    *features.passthrough]
    out = targets.select(*dict.fromkeys(base_columns))
    def reach(window: dt.timedelta, rows: DataFrame = history) -> DataFrame:
        if first is None:
            return rows
        since = first - window
        # Wall-clock text, read in the session's time zone (as `first` was written).
        return rows.filter((F.col(dataset.date_column) >= F.lit(since.date()))
                           & (F.col(dataset.event_time) >= F.lit(f"{since:%Y-%m-%d %H:%M:%S}").cast("timestamp")))

    for group_name, group in features.groups.items():
        out = with_point_window_features(out, reach(max(group.windows)), group_name=group_name, group=group,
                                         timestamp=dataset.event_time)
    for name, outcome_group in features.outcome_windows.items():
        # Outcome windows aggregate outcome rows only: the targets and the outcome rows suffice.
        out = with_outcome_windows(out, lookup, name=name, group=outcome_group, dataset=dataset)
    for name, rate in features.label_rates.items():
        out = with_point_label_rate(out, reach(rate.window), labels[name], name=name, group=rate,
                                    source=label_source(rate, dataset), dataset=dataset, lookup=lookup)
    # Lags and previous events read every column of the earlier events (outcomes' SQL included):
    # the unfiltered table, from their reach before the first target (its dates only).
    out = _with_lags(out, lambda window: reach(window, lookup), features=features, dataset=dataset)
    return _finish(out, features=features, dataset=dataset)


def _finish(out: DataFrame, *, features: FeatureSetConfig, dataset: DatasetConfig) -> DataFrame:
    """Custom functions, ratios, doubles for decimals and `_features_as_of`, after the windows."""
    for custom in features.custom:
        out = out.transform(resolve_feature(custom.name), **custom.args)
    for name, expr in features.ratios.items():
        out = out.withColumn(name, F.expr(expr))
    # SQL arithmetic on decimals (`x / 3600.0`) stays decimal, which xgboost refuses: features are doubles.
    decimals = {f.name for f in out.schema.fields if isinstance(f.dataType, DecimalType)} - set(dataset.key)
    out = out.withColumns({c: F.col(c).cast("double") for c in sorted(decimals)}) if decimals else out
    return out.withColumn(FEATURES_AS_OF, F.col(dataset.event_time) - F.expr("INTERVAL 1 SECOND"))
