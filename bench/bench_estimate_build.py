"""Builds the demo lakehouses bench_estimate.py reads: the pipeline up to stream scoring, once per
live-event shift, each under WORK/shift<S>/rows<N>.

    .venv/bin/python bench/bench_estimate_build.py --rows 200000 --shifts 0 1.0 [--work /tmp/lakeboost-bench-estimate]

A lakehouse whose `gold.stream_predictions` exists is kept (delete it to rebuild).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from _common import bench_arguments, bench_config, jvm_conf  # bench/ is the script's directory
from lakeboost.pipeline import run_pipeline, select_steps
from lakeboost.spark import build_spark


def main() -> None:
    args = bench_arguments(__doc__ or "", lambda p: p.add_argument("--shifts", type=float, nargs="+",
                                                                    default=[0.0, 1.0]))
    spark = None
    base = args.work
    for shift in args.shifts:
        args.work = f"{base}/shift{shift:g}"
        config, root = bench_config(args, [f"demo.shift={shift}"])
        if (Path(root) / "lake" / "gold" / "stream_predictions").exists():
            print(f"shift={shift:g}: kept {root}")
            continue
        shutil.rmtree(root, ignore_errors=True)
        if spark is None:
            spark = build_spark(config.spark, app_name="lakeboost-bench-estimate", extra_conf=jvm_conf(args.rows))
        started = time.monotonic()
        run_pipeline(spark, config, select_steps(config, stop="score_stream"))
        print(f"shift={shift:g}: built {root} in {time.monotonic() - started:.0f} s", flush=True)
    if spark is not None:
        spark.stop()


if __name__ == "__main__":
    main()
