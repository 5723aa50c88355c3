"""Bronze ingest throughput against a plain Spark CSV write of the same files, in one session.

    .venv/bin/python bench/bench_ingest.py --rows 1000000 [--rounds 3] [--work /tmp/lakeboost-bench]

Generates the demo once into WORK/rows<N>/landing (reused on later runs), then, alternating, for
`--rounds` rounds: a plain `spark.read.csv` of the transactions files with the declared schema
written as Delta, the same written as Parquet, and lakeboost's ingest of the `transactions`
source (the real step: a Structured Streaming query, availableNow, into a fresh bronze table
with its quarantine, lineage columns and exactly-once bookkeeping). Prints each run's rows/s
and, per round and over all rounds (medians), the ingest's throughput as a share of each plain
write's.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable

from _common import bench_arguments, bench_config, jvm_conf  # bench/ is the script's directory
from lakeboost.config.model import FileSourceConfig
from lakeboost.ingest.bronze import ingest_sources
from lakeboost.io.catalog import TableCatalog
from lakeboost.pipeline import run_step
from lakeboost.spark import build_spark

SOURCE = "transactions"


def main() -> None:
    args = bench_arguments(__doc__ or "", lambda p: p.add_argument("--rounds", type=int, default=3))
    config, work = bench_config(args)
    spark = build_spark(config.spark, app_name="lakeboost-bench-ingest", extra_conf=jvm_conf(args.rows))
    started = time.monotonic()
    run_step(spark, config, "generate")  # the demo's step (examples/card_fraud), registered when the config loads
    print(f"generate       rows={args.rows:>10}  seconds={time.monotonic() - started:8.1f}")
    cfg = config.sources[SOURCE]
    assert isinstance(cfg, FileSourceConfig) and cfg.declared_schema
    ddl = ", ".join(f"`{c}` {t}" for c, t in cfg.declared_schema.items())
    plain_dir = work / "plain"

    def plain(fmt: str) -> int:
        shutil.rmtree(plain_dir, ignore_errors=True)
        df = spark.read.options(**cfg.options).schema(ddl).csv(cfg.path)
        df.write.format(fmt).mode("overwrite").save(str(plain_dir / fmt))
        if fmt == "delta":  # the commit's own count: no second read
            history = spark.sql(f"DESCRIBE HISTORY delta.`{plain_dir / fmt}` LIMIT 1").collect()[0]
            return int(history["operationMetrics"]["numOutputRows"])
        return -1

    def ingest() -> int:
        shutil.rmtree(work / "lake", ignore_errors=True)
        summary = ingest_sources(TableCatalog(spark, config.storage), config, [SOURCE])
        assert summary.rows_read == summary.rows_written + summary.rows_quarantined, summary
        return summary.rows_read

    runs: list[tuple[str, Callable[[], int]]] = [("csv->delta", lambda: plain("delta")),
                                                 ("csv->parquet", lambda: plain("parquet")),
                                                 ("bronze ingest", ingest)]
    # One unmeasured pass of each first: the JVM compiles each path's code on its first run.
    rates: dict[str, list[float]] = {label: [] for label, _ in runs}
    rows = 0
    for round_no in range(args.rounds + 1):
        for label, run in runs:
            started = time.monotonic()
            counted = run()
            seconds = time.monotonic() - started
            rows = counted if counted > 0 else rows
            if round_no == 0:
                print(f"warm-up        {label:<14} seconds={seconds:7.1f}")
                continue
            rates[label].append(rows / seconds)
            print(f"round {round_no:<2}       {label:<14} rows={rows:>10}  seconds={seconds:7.1f}  "
                  f"rows/s={rows / seconds:10.0f}")
        if round_no:
            ours = rates["bronze ingest"][-1]
            print(f"round {round_no:<2}       ingest/delta={ours / rates['csv->delta'][-1]:.2f}x  "
                  f"ingest/parquet={ours / rates['csv->parquet'][-1]:.2f}x")
    medians = {label: statistics.median(values) for label, values in rates.items()}
    print("median rows/s  " + "  ".join(f"{label}={value:.0f}" for label, value in medians.items()))
    print(f"ratio (medians) ingest/delta={medians['bronze ingest'] / medians['csv->delta']:.2f}x  "
          f"ingest/parquet={medians['bronze ingest'] / medians['csv->parquet']:.2f}x")
    spark.stop()


if __name__ == "__main__":
    main()
