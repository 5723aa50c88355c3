"""Lags (features/lags.py: one union and one window per group, `rangeBetween(-k, -k)` frames)
against what a user writes without them: one self-join per lag on (entity, t - k), each value
then masked unless known at t. Same seeded hourly series (stations x hours, 10% of the hours
missing, no two events of a station in one hour, so the joins need no tie-break); both results
compared.

    .venv/bin/python bench/bench_lags.py [--rows 400000] [--stations 500]

Lags 1h, 2h, 24h, 168h of a plain column and of an outcome known one hour after its event
(`known: at_or_before`). Each variant runs twice after a warm-up, alternating; the lines give
the wall seconds of writing its rows to Spark's `noop` sink.
"""

from __future__ import annotations

import time

from _common import bench_arguments  # bench/ is the script's directory
from lakeboost.config import load_config
from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.features import LagGroup
from lakeboost.features.lags import with_lags
from lakeboost.spark import build_spark
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

LAGS = ("1h", "2h", "24h", "168h")
DATASET = DatasetConfig.model_validate({
    "events": "silver.rentals", "key": "id", "event_time": "t", "date_column": "d",
    "label": {"kind": "value", "column": "rentals", "expr": "rentals", "available_at": "known"}})
GROUP = LagGroup(entity="station", columns={"temp": LAGS, "rentals": LAGS}, known="at_or_before")


def self_joins(events: DataFrame) -> DataFrame:
    """One left join per lag on (station, t - k), values masked unless known at t."""
    out = events.select("id", "station", "t")
    known_as_of = []
    for lag in GROUP.columns["temp"]:
        seconds = int(lag.total_seconds())
        back = events.select("station", (F.col("t").cast("long") + seconds).alias("__s"),
                             F.col("temp").alias(f"__temp_{lag}"), F.col("rentals").alias(f"__rentals_{lag}"),
                             F.col("known").alias(f"__known_{lag}"), F.col("t").alias(f"__t_{lag}"))
        out = out.withColumn("__s", F.col("t").cast("long")).join(back, on=["station", "__s"], how="left")
        usable = F.col(f"__known_{lag}") <= F.col("t")
        out = out.select(*[c for c in out.columns if c != "__s"],
                         F.when(usable, F.col(f"__rentals_{lag}")).alias(f"st_rentals_lag_{lag}"))
        known_as_of += [F.col(f"__t_{lag}"), F.when(usable, F.col(f"__known_{lag}"))]
    temps = [F.col(f"__temp_{lag}").alias(f"st_temp_lag_{lag}") for lag in LAGS]
    counts = [f"st_rentals_lag_{lag}" for lag in LAGS]
    return out.select("id", *temps, *counts, F.greatest(*known_as_of).alias("_known_at_or_before_st"))


def timed(frame: DataFrame) -> float:
    started = time.monotonic()
    frame.write.format("noop").mode("overwrite").save()
    return time.monotonic() - started


def main() -> None:
    args = bench_arguments(__doc__, lambda p: p.add_argument("--stations", type=int, default=500))
    config = load_config("local")
    spark = build_spark(config.spark.model_copy(update={"master": "local[2]"}), app_name="lakeboost-bench-lags",
                        extra_conf={"spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false"})
    hours = args.rows // args.stations
    grid = spark.range(args.stations * hours).select(
        F.col("id"), (F.col("id") % args.stations).alias("station"),
        F.timestamp_seconds(F.lit(1_767_225_600) + F.floor(F.col("id") / args.stations) * 3600).alias("t"),
        (F.abs(F.xxhash64(F.lit("temp"), "id")) % 300 / 10.0).alias("temp"),
        (F.abs(F.xxhash64(F.lit("count"), "id")) % 500).alias("rentals"))
    events = (grid.where(F.abs(F.xxhash64(F.lit("gap"), "id")) % 10 != 0)  # 10% of the hours missing
              .withColumn("known", F.col("t") + F.expr("INTERVAL 1 HOUR")).withColumn("d", F.to_date("t"))
              .cache())
    rows = events.count()
    columns = ["id", *[f"st_temp_lag_{lag}" for lag in LAGS], *[f"st_rentals_lag_{lag}" for lag in LAGS],
               "_known_at_or_before_st"]
    ours = with_lags(events.select("id", "station", "t", "d"), events, name="st", group=GROUP,
                     dataset=DATASET).select(*columns)
    theirs = self_joins(events).select(*columns)
    print(f"rows={rows} stations={args.stations} lags={len(LAGS)} x 2 columns")
    for name, frame in (("warm-up-lags", ours), ("warm-up-joins", theirs)):
        print(f"{name:16} seconds={timed(frame):6.1f}", flush=True)
    for i in (1, 2):
        for name, frame in (("lags", ours), ("self-joins", theirs)):
            print(f"{name + '-' + str(i):16} seconds={timed(frame):6.1f}", flush=True)
    print("equal           ", ours.exceptAll(theirs).isEmpty() and theirs.exceptAll(ours).isEmpty())
    spark.stop()


if __name__ == "__main__":
    main()
