"""Seeded kills at every named failure point (lakeboost.faults), each proven and compared.

    .venv/bin/python bench/bench_kills.py [--seeds 5] [--points ingest,refine,...]

The suite kills once per point; this runs each point's fault test with `--seeds` seeds
(LAKEBOOST_KILL_SEED=1..N), which vary the data and the micro-batch the kill strikes where the
test supports it. Every run asserts, as the suite does, that the process died by SIGKILL at its
point, that the Delta log and the checkpoint show the crash inside its window, and that the
re-run leaves every table equal, row for row, to an uninterrupted run with 0 duplicate keys.
Prints one line per point: runs, passed, seconds; exits non-zero when any run failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Point group -> the suite's fault tests that strike it (pytest node ids).
POINTS = {
    "ingest": ["tests/ingest/test_ingest_faults.py"],
    "refine": ["tests/refine/test_refine_faults.py"],
    "integrate": ["tests/refine/test_integrate_fault.py"],
    "features": ["tests/features/test_replace_fault.py"],
    "score_stream": ["tests/score/test_stream.py::"
                     "test_killed_stream_scores_every_event_exactly_once_with_batch_equal_scores"],
    "monitor": ["tests/monitor/test_monitor_alerts_e2e.py"],
}
SEED_ENV = "LAKEBOOST_KILL_SEED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--points", default=",".join(POINTS), help=f"comma-separated of {sorted(POINTS)}")
    args = parser.parse_args()
    failed = 0
    for point in args.points.split(","):
        nodes = [n for n in POINTS[point] if (REPO / n.split("::")[0]).exists()]
        if not nodes:
            print(f"{point:14s} no fault test", flush=True)
            continue
        passed, started = 0, time.monotonic()
        for seed in range(1, args.seeds + 1):
            done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *nodes],
                                  cwd=REPO, env={**os.environ, SEED_ENV: str(seed)}, capture_output=True, text=True)
            passed += done.returncode == 0
            if done.returncode:
                print(done.stdout[-3000:], file=sys.stderr)
        failed += args.seeds - passed
        print(f"{point:14s} seeds {args.seeds}  passed {passed}  seconds {time.monotonic() - started:.0f}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
