"""Gold feature build, incremental re-builds and training-set cost on the demo at a given size.

    .venv/bin/python bench/bench_features.py --rows 1000000 [--work /tmp/lakeboost-bench] [--features-only]

Reuses the lakehouse bench_ingest_refine.py leaves in WORK/rowsN/lake (generating, ingesting and
refining it first when silver.transactions_enriched is missing). Builds the feature tables fully,
re-runs with unchanged inputs, then appends a new day and one late record to the silver source
and re-builds incrementally after each; times the training set and counts the shuffles of the
demo feature plan. Prints one line per phase. Appending mutates the reused silver table: every
run adds a day, so later runs see a slightly larger lakehouse.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

from _common import bench_arguments, bench_config, jvm_conf  # bench/ is the script's directory
from lakeboost.config import LakeboostConfig
from lakeboost.config.dataset import DatasetConfig
from lakeboost.features.build import build_features, input_tables
from lakeboost.features.compute import FEATURES_AS_OF, compute_features
from lakeboost.features.label_rates import label_source
from lakeboost.features.training_set import build_training_set
from lakeboost.ingest.bronze import ingest_sources
from lakeboost.io.catalog import TableCatalog
from lakeboost.pipeline import run_step
from lakeboost.spark import build_spark
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

FEATURE_SET = "transaction_features"


def ensure_lakehouse(spark: SparkSession, config: LakeboostConfig, work: Path) -> None:
    """Generate, ingest and refine the demo unless the silver source already exists."""
    if (work / "lake" / "silver" / "transactions_enriched").exists():
        return
    started = time.monotonic()
    run_step(spark, config, "generate")  # the demo's step (examples/card_fraud), registered when the config loads
    ingest_sources(TableCatalog(spark, config.storage), config)
    run_step(spark, config, "refine")
    print(f"{'setup':<25} seconds={time.monotonic() - started:8.1f}  (generate + ingest + refine)")


def ensure_change_feed(catalog: TableCatalog, tables: list[str]) -> None:
    """Enable the change data feed on inputs created before it became the session default.

    Without it every "incremental" build silently falls back to a full rebuild.
    """
    missing = [t for t in tables
               if catalog.delta_table(t).detail().first()["properties"].get("delta.enableChangeDataFeed") != "true"]
    for table in missing:
        catalog.spark.sql(f"ALTER TABLE {catalog.sql_ref(table)} SET TBLPROPERTIES (delta.enableChangeDataFeed = true)")
    print(f"{'change-feed':<25} enabled_now={missing}  already_on={[t for t in tables if t not in missing]}")


def tree_cpu_seconds(root: int | None = None) -> float:
    """CPU seconds (user + system) used so far by this process and its descendants (the Spark
    JVM): on a machine shared with other jobs a phase's CPU varies less than its wall time."""
    children: dict[int, list[int]] = {}
    used: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        used[int(entry.name)] = int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    total, todo = 0, [root or os.getpid()]
    while todo:
        pid = todo.pop()
        total += used.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total / os.sysconf("SC_CLK_TCK")


def timed_build(spark: SparkSession, config: LakeboostConfig, label: str, *, full_rebuild: bool = False) -> float:
    """One build of the feature set; prints its mode, the dates and rows it recomputed, the
    rows its commit wrote (inserted + updated), deleted and copied (rewritten unchanged: none
    with deletion vectors), the entities the changes touched, and the seconds."""
    started, cpu = time.monotonic(), tree_cpu_seconds()
    summary = build_features(TableCatalog(spark, config.storage), config, [FEATURE_SET], full_rebuild=full_rebuild)
    seconds, cpu = time.monotonic() - started, tree_cpu_seconds() - cpu
    detail = summary.details[FEATURE_SET]
    extra = "".join(f"  {k}={detail[k]}" for k in ("write", "rows_recomputed", "rows_copied", "rows_deleted",
                                                    "entities") if k in detail)
    print(f"{label:<25} mode={detail['mode']:<11} dates={detail['dates']!s:>4}  "
          f"written={detail['rows_written']:>10}{extra}  seconds={seconds:8.1f}  cpu_seconds={cpu:8.1f}", flush=True)
    return seconds


def append_shifted(catalog: TableCatalog, dataset: DatasetConfig, *, days: int, suffix: str,
                   limit: int | None = None) -> tuple[dt.date, int]:
    """Append rows of the events' last date moved by `days` days, with suffixed keys."""
    source = catalog.read(dataset.events)
    date, time_column = dataset.date_column, dataset.event_time
    last = source.agg(F.max(date)).first()[0]
    rows = source.filter(F.col(date) == F.lit(last))
    if limit is not None:
        rows = rows.orderBy(*dataset.key).limit(limit)
    shifted = (
        rows.withColumn(time_column, F.col(time_column) + F.expr(f"make_dt_interval({days})"))
        .withColumn(date, F.date_add(F.col(date), days))
        .withColumns({k: F.concat(F.col(k), F.lit(suffix)) for k in dataset.key})
    )
    result = catalog.write(shifted.select(*source.columns), dataset.events)
    return last + dt.timedelta(days=days), result.rows_written


def bench_training_set(catalog: TableCatalog, config: LakeboostConfig) -> None:
    started = time.monotonic()
    training = build_training_set(catalog, config.gold.training_set, config.require_dataset)
    built = time.monotonic() - started
    examples = training.df.count()
    total = time.monotonic() - started
    print(f"{'training-set':<25} examples={examples:>10}  features={len(training.feature_columns):>3}  "
          f"build_seconds={built:8.1f}  count_seconds={total - built:8.1f}  seconds={total:8.1f}")


def count_shuffles(catalog: TableCatalog, config: LakeboostConfig) -> None:
    cfg, dataset = config.gold.features[FEATURE_SET], config.require_dataset
    labels = {name: catalog.read(label_source(group, dataset).table) for name, group in cfg.label_rates.items()}
    df = compute_features(catalog.read(dataset.events), features=cfg, dataset=dataset, labels=labels)
    plan = df._jdf.queryExecution().executedPlan().toString()
    base = {*dataset.key, dataset.event_time, dataset.date_column, *cfg.entities(), *cfg.passthrough,
            FEATURES_AS_OF}
    features = [c for c in df.columns if c not in base]
    print(f"{'shuffles':<25} exchange={plan.count('Exchange '):>3}  "
          f"hashpartitioning={plan.count('Exchange hashpartitioning'):>3}  "
          f"broadcast={plan.count('BroadcastExchange '):>3}  feature_columns={len(features):>3}  "
          f"columns={len(df.columns):>3}")


def main() -> None:
    args = bench_arguments(__doc__ or "", lambda p: p.add_argument(
        "--features-only", action="store_true", help="skip the training set and the plan's shuffle count"))
    config, work = bench_config(args)
    spark = build_spark(config.spark, app_name="lakeboost-bench", extra_conf=jvm_conf(args.rows))
    catalog = TableCatalog(spark, config.storage)
    started_all = time.monotonic()
    ensure_lakehouse(spark, config, work)
    ensure_change_feed(catalog, list(input_tables(config.gold.features[FEATURE_SET], config.require_dataset)))
    full = timed_build(spark, config, "features-full", full_rebuild=True)
    timed_build(spark, config, "features-noop")
    new_day, appended = append_shifted(catalog, config.require_dataset, days=1, suffix="_N")
    print(f"{'append-day':<25} date={new_day}  rows={appended}", flush=True)
    day = timed_build(spark, config, "features-incremental-day")
    late_day, appended = append_shifted(catalog, config.require_dataset, days=-20, suffix="_LATE", limit=1)
    print(f"{'append-late':<25} date={late_day}  rows={appended}", flush=True)
    late = timed_build(spark, config, "features-late-record")
    print(f"{'ratio':<25} new_day/full={day / full:.3f}  late_record/full={late / full:.3f}", flush=True)
    if not args.features_only:
        bench_training_set(catalog, config)
        count_shuffles(catalog, config)
    print(f"{'total':<25} seconds={time.monotonic() - started_all:8.1f}")
    spark.stop()


if __name__ == "__main__":
    main()
