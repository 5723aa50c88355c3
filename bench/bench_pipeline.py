"""The demo pipeline's steps at a given size: seconds, Spark jobs, stages and tasks per step.

    .venv/bin/python bench/bench_pipeline.py --rows 20000 [--work /tmp/lakeboost-bench] [--set k=v ...]

Runs every configured step once on a fresh lakehouse under WORK/rowsN (the landing data is
generated again too), in one Spark session started before the clock, then prints one line per
step and the total of the steps: the floor a user's first `make demo` sees after start-up.
"""

from __future__ import annotations

import shutil
import time

from _common import bench_arguments, bench_config, jvm_conf  # bench/ is the script's directory
from lakeboost.pipeline import run_pipeline, select_steps
from lakeboost.spark import build_spark


def main() -> None:
    args = bench_arguments(__doc__ or "", lambda p: p.add_argument("--set", action="append", default=[],
                                                                    help="a config override, as `make demo` takes"))
    config, work = bench_config(args, args.set)
    shutil.rmtree(work, ignore_errors=True)
    # Enough retained jobs and stages for the status store to hold a whole step's.
    spark = build_spark(config.spark, app_name="lakeboost-bench",
                        extra_conf={"spark.ui.retainedJobs": "100000", "spark.ui.retainedStages": "100000",
                                    **jvm_conf(args.rows)})
    spark.range(1).count()  # start-up (JVM, Delta and Python workers) is not a step's
    started = time.monotonic()
    summary = run_pipeline(spark, config, select_steps(config))
    total = time.monotonic() - started
    jobs = stages = tasks = 0
    for name, details in summary.details.items():
        if not isinstance(details, dict) or "cost" not in details:
            continue
        cost = details["cost"]
        jobs, stages, tasks = jobs + cost["jobs"], stages + cost["stages"], tasks + cost["tasks"]
        print(f"{name:<14} seconds={details['seconds']:7.1f}  jobs={cost['jobs']:>5}  stages={cost['stages']:>5}  "
              f"tasks={cost['tasks']:>6}  rows_written={details['rows_written']:>9}")
    train = summary.details.get("train", {})
    test = train.get("metrics", {}).get("test", {})
    print(f"{'steps':<14} seconds={total:7.1f}  jobs={jobs:>5}  stages={stages:>5}  tasks={tasks:>6}  "
          f"rounds={train.get('rounds')}  test_roc_auc={test.get('roc_auc', float('nan')):.4f}  "
          f"test_pr_auc={test.get('pr_auc', float('nan')):.4f}  rows={args.rows}  days={args.days}")
    spark.stop()


if __name__ == "__main__":
    main()
