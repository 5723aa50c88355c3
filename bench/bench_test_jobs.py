"""The test suite's Spark settings for the kill tests' jobs (tests/conftest.TEST_JOB_SETS), measured.

A demo job (jobs/<job>.py, no fault) in a process of its own on a copy of a built demo lakehouse
(the suite's shared `demo-lakehouse`: its `lake` and `landing`), with conf/local's Spark settings
(A) and with TEST_JOB_SETS added (B), in the order given (alternate them: the machine is shared).
Prints wall seconds and the CPU seconds of the job's whole process tree (python, its JVM, Python
workers), polled from /proc: on a loaded machine the CPU seconds are what a run on 2 idle cores
pays. Usage:
    python bench/bench_test_jobs.py --demo <built demo-lakehouse copy> --jobs score_stream,monitor --order ABBA
(the MLflow store's artifact paths in <demo>/lake/mlflow.db must point at <demo>).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "lib"), str(ROOT / "examples")]
from tests.conftest import DEMO_OVERRIDES, DEMO_PII_KEY, LIVE_AS_COMMITS, TEST_JOB_SETS  # noqa: E402  (JAVA_TOOL_OPTIONS)

TICK = os.sysconf("SC_CLK_TCK")
JOB_SETS = {"monitor": [], "score_stream": ["scoring.stream.predictions_table=gold.bench_stream",
                                            "scoring.stream.events_table=silver.bench_live"]}


def _sample(root_pid: int, seen: dict[int, int]) -> None:
    """Record the CPU ticks so far of `root_pid` and every descendant (the largest value seen)."""
    stats: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    tree, grown = {root_pid}, True
    while grown:
        grown = False
        for pid, (ppid, _) in stats.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grown = True
    for pid in tree & stats.keys():
        seen[pid] = max(seen.get(pid, 0), stats[pid][1])


def run(job: str, demo: Path, root: Path, extra: list[str]) -> tuple[float, float]:
    argv = [sys.executable, str(ROOT / f"jobs/{job}.py")]
    for item in [f"storage.root={root}/lake", f"storage.landing={demo}/landing", *DEMO_OVERRIDES, *LIVE_AS_COMMITS,
                 *JOB_SETS[job], *extra]:
        argv += ["--set", item]
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "LAKEBOOST_PII_KEY": DEMO_PII_KEY,
           "CUSTOMERS_JDBC_URL": f"jdbc:sqlite:{demo}/landing/customers.db"}
    started, seen = time.monotonic(), {}
    with (root / "stderr").open("w") as err:
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
        while process.poll() is None:
            _sample(process.pid, seen)
            time.sleep(0.3)
    if process.returncode != 0:
        raise SystemExit(f"{job} failed:\n{(root / 'stderr').read_text()[-3000:]}")
    return time.monotonic() - started, sum(seen.values()) / TICK


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, required=True)
    parser.add_argument("--jobs", default="score_stream,monitor")
    parser.add_argument("--order", default="ABBA")
    args = parser.parse_args()
    print(f"# TEST_JOB_SETS = {TEST_JOB_SETS}", flush=True)
    for job in args.jobs.split(","):
        for label in args.order:
            with tempfile.TemporaryDirectory() as work:
                root = Path(work)
                shutil.copytree(args.demo / "lake", root / "lake")
                load = os.getloadavg()[0]
                wall, cpu = run(job, args.demo, root, TEST_JOB_SETS if label == "B" else [])
            print(f"{time.strftime('%H:%M:%S')} {job:<13} {label}  wall {wall:6.1f} s  cpu {cpu:5.1f} s  "
                  f"load1 {load:.1f}", flush=True)


if __name__ == "__main__":
    main()
