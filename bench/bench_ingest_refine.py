"""Bronze ingest and silver refine throughput on the demo at a given size.

    .venv/bin/python bench/bench_ingest_refine.py --rows 1000000 [--work /tmp/lakeboost-bench]

Generates the demo once into WORK/landing (reused on later runs), then ingests into a fresh
lakehouse, refines it, and re-runs both to show the re-run cost. Prints one line per phase.
"""

from __future__ import annotations

import shutil
import time

from _common import bench_arguments, bench_config, jvm_conf  # bench/ is the script's directory
from lakeboost.ingest.bronze import ingest_sources
from lakeboost.io.catalog import TableCatalog
from lakeboost.pipeline import run_step
from lakeboost.spark import build_spark


def main() -> None:
    args = bench_arguments(__doc__ or "")
    config, work = bench_config(args)
    spark = build_spark(config.spark, app_name="lakeboost-bench", extra_conf=jvm_conf(args.rows))
    started = time.monotonic()
    run_step(spark, config, "generate")  # the demo's step (examples/card_fraud), registered when the config loads
    print(f"generate       rows={args.rows:>10}  seconds={time.monotonic() - started:8.1f}")
    shutil.rmtree(work / "lake", ignore_errors=True)
    for label, step in (("ingest", lambda: ingest_sources(TableCatalog(spark, config.storage), config)),
                        ("refine", lambda: run_step(spark, config, "refine")),
                        ("ingest-rerun", lambda: ingest_sources(TableCatalog(spark, config.storage), config)),
                        ("refine-rerun", lambda: run_step(spark, config, "refine"))):
        started = time.monotonic()
        summary = step()
        seconds = time.monotonic() - started
        rate = summary.rows_read / seconds if seconds else 0.0
        print(f"{label:<14} rows_read={summary.rows_read:>10}  written={summary.rows_written:>10}  "
              f"quarantined={summary.rows_quarantined:>6}  seconds={seconds:8.1f}  rows/s={rate:10.0f}")
    spark.stop()


if __name__ == "__main__":
    main()
