"""Past-label rates per entity (e.g. a merchant's chargeback rate) as known at each event's time.

Labels count from when they were *reported*, not from when their event happened: a label
filed after the event being scored is the future and must not be used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from lakeboost.config.dataset import DatasetConfig, PresenceLabel
from lakeboost.config.features import LabelRateGroup
from lakeboost.features.outcomes import IS_OUTCOME, KNOWN_AS_OF, TIME, known_union


@dataclass(frozen=True)
class LabelSource:
    """Where a label rate's labels come from: a table, its event-key columns, its report time."""

    table: str
    key: tuple[str, ...]
    available_at: str


def label_source(group: LabelRateGroup, dataset: DatasetConfig) -> LabelSource:
    """The group's own labels table, or the dataset's presence label (validated at load)."""
    if group.labels is not None:
        assert group.available_at is not None  # checked when the config loads
        return LabelSource(group.labels, group.label_key or dataset.key, group.available_at)
    assert isinstance(dataset.label, PresenceLabel)  # checked when the config loads
    return LabelSource(dataset.label.table, dataset.label_key, dataset.label.available_at)


def with_label_rate(events: DataFrame, labels: DataFrame, *, name: str, group: LabelRateGroup,
                    source: LabelSource, event_key: Sequence[str], timestamp: str,
                    lookup: DataFrame | None = None) -> DataFrame:
    """Add `<name>_labels_<w>`, `<name>_events_<w>` and the smoothed `<name>_rate_<w>`.

    Counts cover [t - window, t): events of the same entity before this one, and labels of
    the entity's events reported in that span. `lookup` (event key -> entity) must cover every
    labelled event, also ones older than `events` (an incremental build reads a date range,
    but a label reported today may belong to an event from months ago).

    Label rows travel through the same window as the events (a union, not a join back), so
    the whole computation costs one shuffle by entity plus a broadcast of the labels.
    """
    lookup = events if lookup is None else lookup
    entity = list(group.entity)
    # Labels are few (about the positive rate of events): broadcast them to the lookup.
    keyed_labels = labels.select(*[F.col(c).alias(k) for c, k in zip(source.key, event_key, strict=True)],
                                 F.col(source.available_at).alias("__available_at"))
    label_rows = (
        lookup.select(*event_key, *entity)
        .join(F.broadcast(keyed_labels), on=list(event_key), how="inner")
        .select(*entity, F.col("__available_at").cast("long").alias(TIME))
    )
    seconds = int(group.window.total_seconds())
    frame = Window.partitionBy(*entity).orderBy(TIME).rangeBetween(-seconds, -1)
    suffix = str(group.window)  # as spelled in the config: `_30d`
    labelled, seen = f"{name}_labels_{suffix}", f"{name}_events_{suffix}"
    counted = (
        known_union(events, label_rows, timestamp=timestamp)
        .withColumn(labelled, F.coalesce(F.sum(IS_OUTCOME).over(frame), F.lit(0)))
        .withColumn(seen, F.coalesce(F.sum(1 - F.col(IS_OUTCOME)).over(frame), F.lit(0)))
        # The latest report counted, for the leakage audit (a label rate is an outcome window).
        .withColumn(f"{KNOWN_AS_OF}{name}",
                    F.timestamp_seconds(F.max(F.when(F.col(IS_OUTCOME) == 1, F.col(TIME))).over(frame)))
        .filter(F.col(IS_OUTCOME) == 0)
        .drop(TIME, IS_OUTCOME)
    )
    rate = (F.col(labelled) + F.lit(group.prior_rate * group.prior_weight)) / (F.col(seen) + F.lit(group.prior_weight))
    return counted.withColumn(f"{name}_rate_{suffix}", rate)
