"""Past-label rates per entity (e.g. merchant chargeback rate) as known at each event's time.

Labels count from when they were *reported*, not from when their event happened: a
chargeback filed after the event being scored is the future and must not be used.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from lakeboost.config.features import LabelRateGroup, duration_seconds


def with_label_rate(events: DataFrame, labels: DataFrame, *, name: str, group: LabelRateGroup,
                    event_key: str, timestamp: str, lookup: DataFrame | None = None) -> DataFrame:
    """Add `<name>_labels_<w>`, `<name>_events_<w>` and the smoothed `<name>_rate_<w>`.

    Counts cover [t - window, t): events of the same entity before this one, and labels of
    the entity's events reported in that span. `lookup` (event key -> entity) must cover every
    labelled event, also ones older than `events` (an incremental build reads a date range,
    but a chargeback reported today may belong to a transaction from months ago).

    Label rows travel through the same window as the events (a union, not a join back), so
    the whole computation costs one shuffle by entity plus a broadcast of the labels.
    """
    lookup = events if lookup is None else lookup
    # Labels are few (about the positive rate of events): broadcast them to the lookup.
    label_rows = (
        lookup.select(event_key, group.entity)
        .join(F.broadcast(labels.select(F.col(group.label_key).alias(event_key), group.reported_at)),
              on=event_key, how="inner")
        .select(group.entity, F.col(group.reported_at).cast("long").alias("__t"), F.lit(1).alias("__is_label"))
    )
    own = events.withColumn("__t", F.col(timestamp).cast("long")).withColumn("__is_label", F.lit(0))
    seconds = duration_seconds(group.window)
    frame = Window.partitionBy(group.entity).orderBy("__t").rangeBetween(-seconds, -1)
    suffix = group.window
    labelled, seen = f"{name}_labels_{suffix}", f"{name}_events_{suffix}"
    counted = (
        own.unionByName(label_rows, allowMissingColumns=True)
        .withColumn(labelled, F.coalesce(F.sum("__is_label").over(frame), F.lit(0)))
        .withColumn(seen, F.coalesce(F.sum(1 - F.col("__is_label")).over(frame), F.lit(0)))
        .filter(F.col("__is_label") == 0)
        .drop("__t", "__is_label")
    )
    rate = (F.col(labelled) + F.lit(group.prior_rate * group.prior_weight)) / (F.col(seen) + F.lit(group.prior_weight))
    return counted.withColumn(f"{name}_rate_{suffix}", rate)
