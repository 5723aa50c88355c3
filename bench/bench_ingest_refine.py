"""Bronze ingest and silver refine throughput on the demo at a given size.

    .venv/bin/python bench/bench_ingest_refine.py --rows 1000000 [--work /tmp/lakeboost-bench]

Generates the demo once into WORK/landing (reused on later runs), then ingests into a fresh
lakehouse, refines it, and re-runs both to show the re-run cost. Prints one line per phase.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from lakeboost.config import load_config
from lakeboost.demo.job import generate_step
from lakeboost.ingest.bronze import ingest_sources
from lakeboost.logs import configure_logging
from lakeboost.refine.job import refine_step
from lakeboost.spark import build_spark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--work", default="/tmp/lakeboost-bench")
    args = parser.parse_args()
    configure_logging("WARNING")
    work = Path(args.work) / f"rows{args.rows}"
    os.environ.setdefault("LAKEBOOST_PII_KEY", "bench-only-key-0123456789abcdef")
    config = load_config("local", [f"storage.root={work}/lake", f"storage.landing={work}/landing",
                                   f"demo.rows={args.rows}", f"demo.days={args.days}"],
                         environ={**os.environ, "CUSTOMERS_JDBC_URL": f"jdbc:sqlite:{work}/landing/customers.db"})
    spark = build_spark(config.spark, app_name="lakeboost-bench")
    started = time.monotonic()
    generate_step(spark, config)
    print(f"generate       rows={args.rows:>10}  seconds={time.monotonic() - started:8.1f}")
    shutil.rmtree(work / "lake", ignore_errors=True)
    for label, step in (("ingest", lambda: ingest_sources(spark, config)),
                        ("refine", lambda: refine_step(spark, config)),
                        ("ingest-rerun", lambda: ingest_sources(spark, config)),
                        ("refine-rerun", lambda: refine_step(spark, config))):
        started = time.monotonic()
        summary = step()
        seconds = time.monotonic() - started
        rate = summary.rows_read / seconds if seconds else 0.0
        print(f"{label:<14} rows_read={summary.rows_read:>10}  written={summary.rows_written:>10}  "
              f"quarantined={summary.rows_quarantined:>6}  seconds={seconds:8.1f}  rows/s={rate:10.0f}")
    spark.stop()


if __name__ == "__main__":
    main()
