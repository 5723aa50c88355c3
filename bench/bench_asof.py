"""The as-of join (refine/asof.py: a union and one window) against the usual hand-written
alternative, a range join followed by a ranking (join on key and time <= left time, keep the
latest per left row), on the same seeded rows; both results compared.

    .venv/bin/python bench/bench_asof.py [--rows 400000] [--keys 2000] [--versions 50]

Spark has no as-of join (Spark 4.2: none in the DataFrame API; pandas-on-Spark's merge_asof
is not distributed), so the range join is what a user would write otherwise. Each variant runs
twice after a warm-up; the lines give the wall seconds of a `count` of its result's rows and
whether the two results are equal.
"""

from __future__ import annotations

import time

from _common import bench_arguments  # bench/ is the script's directory
from lakeboost.config import load_config
from lakeboost.refine.asof import asof_join
from lakeboost.spark import build_spark
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def range_join_latest(left: DataFrame, right: DataFrame) -> DataFrame:
    """Every left row with the right row of the same key at or before its time (latest), by a
    range join and a ranking: what a user writes without an as-of join."""
    candidates = left.join(right.withColumnRenamed("t", "rt"), on=[left["k"] == F.col("rk"),
                                                                   F.col("rt") <= left["t"]], how="left")
    rank = F.row_number().over(Window.partitionBy("id").orderBy(F.col("rt").desc_nulls_last()))
    return (candidates.withColumn("__rank", rank).filter(F.col("__rank") == 1)
            .select("id", "k", "t", F.col("v").alias("r_v"), F.col("rt").alias("r_asof_time")))


def timed(frame: DataFrame) -> float:
    started = time.monotonic()
    frame.write.format("noop").mode("overwrite").save()
    return time.monotonic() - started


def main() -> None:
    args = bench_arguments(__doc__, lambda p: (p.add_argument("--keys", type=int, default=2000),
                                               p.add_argument("--versions", type=int, default=50)))
    config = load_config("local")
    spark = build_spark(config.spark.model_copy(update={"master": "local[2]"}), app_name="lakeboost-bench-asof",
                        extra_conf={"spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false"})
    left = spark.range(args.rows).select(
        F.col("id"), (F.col("id") % args.keys).alias("k"),
        F.timestamp_seconds(F.abs(F.xxhash64(F.lit("t"), "id")) % 10_000_000).alias("t")).cache()
    right = spark.range(args.keys * args.versions).select(
        (F.col("id") % args.keys).alias("rk"),
        # The versions of a key at distinct times (the j-th in the j-th slice): no ties to break.
        F.timestamp_seconds(F.floor(F.col("id") / args.keys) * (10_000_000 // args.versions)
                            + F.abs(F.xxhash64(F.lit("r"), "id")) % (10_000_000 // args.versions)).alias("t"),
        F.col("id").alias("v")).cache()
    left.count(), right.count()
    ours = asof_join(left, right.withColumnRenamed("rk", "k"), on=["k"], left_time="t", right_time="t",
                     right_columns=["v"], prefix="r_").select("id", "k", "t", "r_v", "r_asof_time")
    theirs = range_join_latest(left, right)
    for name, frame in (("warm-up-asof", ours), ("warm-up-range", theirs)):
        print(f"{name:<16} seconds={timed(frame):6.1f}", flush=True)
    for repeat in (1, 2):
        for name, frame in (("asof_join", ours), ("range+rank", theirs)):
            print(f"{name + '-' + str(repeat):<16} seconds={timed(frame):6.1f}  left_rows={args.rows}  "
                  f"right_rows={args.keys * args.versions}", flush=True)
    equal = ours.exceptAll(theirs).isEmpty() and theirs.exceptAll(ours).isEmpty()
    print(f"{'equal':<16} {equal}")
    spark.stop()


if __name__ == "__main__":
    main()
