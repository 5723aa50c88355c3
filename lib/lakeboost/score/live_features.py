"""The features of a live micro-batch: the batch feature code over the live rows plus the
history their windows reach into (`dataset.events` and earlier micro-batches' live events),
restricted to the batch's entities. That history is Delta's: read from it here (`past_events`)
or kept across micro-batches by score.live_state, which holds exactly the same rows; a restart
loses none of it and a late micro-batch sees exactly what a batch rebuild would.
"""

from __future__ import annotations

import datetime as dt
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.features import FeatureSetConfig
from lakeboost.features.build import reach_days
from lakeboost.features.compute import compute_features
from lakeboost.features.label_rates import label_source
from lakeboost.features.outcomes import outcome_availabilities
from lakeboost.io.catalog import TableCatalog


def past_events(catalog: TableCatalog, dataset: DatasetConfig, live: DataFrame, *, live_table: str) -> DataFrame:
    """Every earlier event, read from Delta: the batch events and earlier micro-batches' live
    events (`live_table`). (score.live_state.LiveState.past_events keeps the same rows.)"""
    past = catalog.read(dataset.events).select(*live.columns)
    if catalog.exists(live_table):
        past = past.unionByName(catalog.read(live_table).select(*live.columns))
    return past


def of_entities(df: DataFrame, live: DataFrame, entities: list[tuple[str, ...]], key: tuple[str, ...]) -> DataFrame:
    """Rows of `df` sharing at least one entity (one or more columns) with a live row (a
    broadcast semi-join each)."""
    related = [df.join(F.broadcast(live.select(*e).distinct()), list(e), "left_semi") for e in entities]
    out = related[0]
    for more in related[1:]:
        out = out.unionByName(more)
    return out.dropDuplicates(list(key)) if len(related) > 1 else out


def live_features(catalog: TableCatalog, features: FeatureSetConfig, dataset: DatasetConfig, enriched: DataFrame,
                  first: dt.datetime, *, past: DataFrame) -> DataFrame:
    """Features of the live rows (earliest at `first`), by the batch code over live rows + their
    history (`past`: every earlier event, `past_events`; the batch's own keys are left out here,
    a replayed batch may have written them before).

    Windows need the batch's entities' events since `first` minus the longest window (or a
    custom feature's lookback); label rates also need the entity of every labelled event,
    however old (a label reported today may belong to an event from months ago), and outcome
    windows every event whose outcome became known since then.
    """
    key = dataset.key
    since = first - dt.timedelta(days=reach_days(features))
    groups = [g.entity for g in features.groups.values()] + [g.entity for g in features.label_rates.values()]
    entities = list(dict.fromkeys(groups))
    past = past.select(*enriched.columns).join(enriched.select(*key), list(key), "left_anti")
    history = past.filter(F.col(dataset.event_time) >= F.lit(since))
    # A custom feature with a lookback reads history of entities we cannot name.
    if any(c.lookback is not None for c in features.custom):
        events = history.unionByName(enriched)
    else:
        events = (of_entities(history, enriched, entities, key) if entities else history.limit(0)).unionByName(enriched)
    lookup = _lookup(past, enriched, features, dataset, since=since)
    labels = {n: catalog.read(label_source(g, dataset).table) for n, g in features.label_rates.items()}
    computed = compute_features(events, features=features, dataset=dataset, labels=labels, lookup=lookup)
    return computed.join(enriched.select(*key), list(key), "left_semi")


def _lookup(past: DataFrame, enriched: DataFrame, features: FeatureSetConfig, dataset: DatasetConfig, *,
            since: dt.datetime) -> DataFrame | None:
    """Earlier events of the live rows' entities for label rates (their entity, however old the
    event), outcome windows (whole rows, of outcomes known since `since`: earlier ones fall
    outside every window of a live row), lags and previous events (whole rows since `since`)."""
    rate_entities = [g.entity for g in features.label_rates.values()]
    outcome_entities = [g.entity for g in features.outcome_windows.values()]
    # Lags and previous events read whole rows of their entities' events since `since`.
    lag_entities = [g.entity for g in features.lags.values()] + [g.entity for g in features.previous.values()]
    entities = list(dict.fromkeys(rate_entities + outcome_entities + lag_entities))
    if not entities:
        return None
    key = dataset.key
    if not outcome_entities and not lag_entities:
        keyed = list(dict.fromkeys([*key, *[c for e in entities for c in e]]))
        past, enriched = past.select(*keyed), enriched.select(*keyed)
    elif not rate_entities:
        # Outcomes known since then, and events since then (pending ones, and ones whose outcome
        # stamped earlier counts from the event's own time).
        known = [F.expr(availability) >= F.lit(since) for g in features.outcome_windows.values()
                 for availability in outcome_availabilities(g, dataset)]
        past = past.filter(reduce(lambda a, b: a | b, [F.col(dataset.event_time) >= F.lit(since), *known]))
    return of_entities(past, enriched, entities, key).unionByName(enriched, allowMissingColumns=True)
