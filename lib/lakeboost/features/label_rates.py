"""Past-label rates per entity (e.g. merchant chargeback rate) as known at each event's time.

Labels count from when they were *reported*, not from when their event happened: a
chargeback filed after the event being scored is the future and must not be used.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from lakeboost.config.features import LabelRateGroup, duration_seconds


def with_label_rate(events: DataFrame, labels: DataFrame, *, name: str, group: LabelRateGroup,
                    event_key: str, timestamp: str) -> DataFrame:
    """Add `<name>_labels_<w>`, `<name>_events_<w>` and the smoothed `<name>_rate_<w>`.

    Counts cover [t - window, t): events of the same entity before this one, and labels of
    the entity's events reported in that span.
    """
    # Which entity each label belongs to comes from its event (labels carry only the key).
    label_events = (
        labels.select(F.col(group.label_key).alias(event_key), F.col(group.reported_at).alias("__at"))
        .join(events.select(event_key, group.entity), on=event_key, how="inner")
        .select(group.entity, F.col("__at").cast("long").alias("__t"), F.lit(1).alias("__is_label"),
                F.lit(None).cast(events.schema[event_key].dataType).alias(event_key))
    )
    own = events.select(group.entity, F.col(timestamp).cast("long").alias("__t"), F.lit(0).alias("__is_label"),
                        F.col(event_key))
    seconds = duration_seconds(group.window)
    frame = Window.partitionBy(group.entity).orderBy("__t").rangeBetween(-seconds, -1)
    suffix = group.window
    counted = (
        own.unionByName(label_events)
        .withColumn(f"{name}_labels_{suffix}", F.sum("__is_label").over(frame))
        .withColumn(f"{name}_events_{suffix}", F.sum(1 - F.col("__is_label")).over(frame))
        .filter(F.col("__is_label") == 0)
        .select(event_key, f"{name}_labels_{suffix}", f"{name}_events_{suffix}")
    )
    labelled, seen = F.coalesce(F.col(f"{name}_labels_{suffix}"), F.lit(0)), F.coalesce(
        F.col(f"{name}_events_{suffix}"), F.lit(0))
    rate = (labelled + F.lit(group.prior_rate * group.prior_weight)) / (seen + F.lit(group.prior_weight))
    return events.join(counted, on=event_key, how="left").withColumn(f"{name}_rate_{suffix}", rate)
