"""The fit's two paths side by side: lakeboost's borrowed worker path against xgboost.spark's
stock fit (LAKEBOOST_BORROWED=off, what lakeboost falls back to outside the tested versions).

    .venv/bin/python bench/bench_fit_paths.py --rows 100000 [--repeats 3] [--workers 2]

A seeded synthetic binary set (a logit of two features and a category; partition independent),
`train_model` with early stopping, on local[2]. One warm-up fit first (Python workers, JIT), then
the two paths alternate `--repeats` times; each line is one train_model run (wall) and its fit,
and the last lines say whether every stock booster equals the borrowed one, tree for tree.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import time

from _common import bench_arguments  # bench/ is the script's directory
from lakeboost.borrowed import SWITCH_ENV
from lakeboost.config import load_config
from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.training import TrainingConfig
from lakeboost.features.training_set import TrainingSet
from lakeboost.spark import build_spark
from lakeboost.train.trainer import TrainResult, train_model
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

DATASET = DatasetConfig.model_validate({
    "events": "silver.synthetic", "key": "txn_id", "event_time": "event_time", "date_column": "event_date",
    "label": {"kind": "value", "column": "label", "expr": "outcome", "available_at": "event_time"}})


def synthetic(spark: SparkSession, rows: int) -> TrainingSet:
    def uniform(seed: str):
        return (F.abs(F.xxhash64(F.lit(seed), F.col("id"))) % 100_000) / 100_000.0

    base = spark.range(rows).select(
        F.format_string("T%08d", F.col("id")).alias("txn_id"),
        F.timestamp_seconds(F.lit(1_767_225_600) + F.col("id") * 60).alias("event_time"),
        uniform("f1").alias("f1"), uniform("f2").alias("f2"), uniform("noise").alias("noise"),
        F.element_at(F.array(F.lit("pos"), F.lit("online"), F.lit("atm")),
                     (F.abs(F.xxhash64(F.lit("c"), F.col("id"))) % 3 + 1).cast("int")).alias("channel"))
    logit = F.lit(-3.0) + 5.0 * F.col("f1") + 2.0 * F.col("f2") + F.when(F.col("channel") == "online", 1.0)\
        .otherwise(0.0)
    df = base.withColumn("label", (F.col("noise") < 1 / (1 + F.exp(-logit))).cast("int")).cache()
    df.count()
    return TrainingSet(df, {"gold.synthetic": 0}, dt.datetime(2026, 3, 1), ("f1", "f2", "channel"), ("channel",),
                       DATASET)


def run(training: TrainingSet, cfg: TrainingConfig, *, stock: bool) -> tuple[float, TrainResult]:
    if stock:
        os.environ[SWITCH_ENV] = "off"
    try:
        started = time.monotonic()
        result = train_model(training, cfg)
        return time.monotonic() - started, result
    finally:
        os.environ.pop(SWITCH_ENV, None)


def main() -> None:
    args = bench_arguments(__doc__, lambda p: (p.add_argument("--repeats", type=int, default=3),
                                               p.add_argument("--workers", type=int, default=2)))
    config = load_config("local")
    spark = build_spark(config.spark.model_copy(update={"master": "local[2]"}), app_name="lakeboost-bench-fit-paths",
                        extra_conf={"spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false"})
    training = synthetic(spark, args.rows)
    cfg = TrainingConfig.model_validate({"model": {
        "num_workers": args.workers, "n_estimators": 200, "early_stopping_rounds": 20,
        "params": {"max_depth": 5, "learning_rate": 0.1}}})
    run(training, cfg, stock=False)  # warm-up: Python workers, the JVM's compilation
    seconds: dict[str, list[float]] = {"borrowed": [], "stock": []}
    fits: dict[str, list[float]] = {"borrowed": [], "stock": []}
    trees: dict[str, list[list[str]]] = {"borrowed": [], "stock": []}
    for repeat in range(args.repeats):
        for path in ("borrowed", "stock"):
            wall, result = run(training, cfg, stock=path == "stock")
            seconds[path].append(wall)
            fits[path].append(result.seconds)
            trees[path].append(result.model.get_booster().get_dump(dump_format="json", with_stats=True))
            label = f"{path}-{repeat + 1}"
            print(f"{label:<12} train_model_seconds={wall:6.1f}  fit_seconds={result.seconds:6.1f}"
                  f"  rounds={result.rounds:>4}  test_roc_auc={result.metrics['test']['roc_auc']:.6f}"
                  f"  test_pr_auc={result.metrics['test']['pr_auc']:.6f}", flush=True)
            result.release()
    for path in ("borrowed", "stock"):
        print(f"{path + '-median':<12} train_model_seconds={statistics.median(seconds[path]):6.1f}  "
              f"fit_seconds={statistics.median(fits[path]):6.1f}  rows={args.rows}  workers={args.workers}")
    fit_ratio = statistics.median(fits["stock"]) / statistics.median(fits["borrowed"])
    wall_ratio = statistics.median(seconds["stock"]) / statistics.median(seconds["borrowed"])
    print(f"{'ratio':<12} stock/borrowed fit={fit_ratio:.2f}x  train_model={wall_ratio:.2f}x")
    same = all(t == trees["borrowed"][0] for t in trees["borrowed"] + trees["stock"])
    print(f"{'booster':<12} every stock booster equal to the borrowed one, tree for tree: {same}")
    spark.stop()


if __name__ == "__main__":
    main()
