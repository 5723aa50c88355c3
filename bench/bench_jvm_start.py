"""A fresh JVM's start as the test suite pays it: a lakeboost Spark session (conf/local) and one Delta
count, in a new process with the suite's JAVA_TOOL_OPTIONS (tests/conftest.py), plus any JVM
options given; prints the phases' wall seconds and the process tree's CPU seconds (python, java).
Usage: python bench/bench_jvm_start.py --table <a Delta table's path> [--runs N] [-- JVM options]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")
CODE = r'''
import sys, time
started = time.monotonic()
sys.path[:0] = [{root!r} + "/lib", {root!r}, {root!r} + "/examples"]
import tests.conftest
from lakeboost.config import load_config
from lakeboost.spark import build_spark
config = load_config("local", conf_dir=tests.conftest.REPO / "conf")
imported = time.monotonic()
spark = build_spark(config.spark)
built = time.monotonic()
spark.read.format("delta").load({table!r}).count()
print(f"imports {{imported - started:.1f}} s  session {{built - imported:.1f}} s  "
      f"first delta count {{time.monotonic() - built:.1f}} s", file=sys.stderr)
'''


def _sample(root_pid: int, seen: dict[int, tuple[int, str]]) -> None:
    stats: dict[int, tuple[int, int, str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    head, rest = f.read().rsplit(")", 1)
            except OSError:
                continue
            fields = rest.split()
            stats[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]), head.split("(", 1)[1])
    tree, grown = {root_pid}, True
    while grown:
        grown = False
        for pid, (ppid, _, _) in stats.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grown = True
    for pid in tree & stats.keys():
        seen[pid] = (max(seen.get(pid, (0, ""))[0], stats[pid][1]), stats[pid][2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("jvm_options", nargs="*")
    args = parser.parse_args()
    env = dict(os.environ)
    for _ in range(args.runs):
        seen: dict[int, tuple[int, str]] = {}
        started = time.monotonic()
        if args.jvm_options:  # tests/conftest.py then adds the suite's own after them
            env["JAVA_TOOL_OPTIONS"] = f"{os.environ.get('JAVA_TOOL_OPTIONS', '')} {' '.join(args.jvm_options)}"
        process = subprocess.Popen([sys.executable, "-c", CODE.format(root=str(ROOT), table=args.table)], env=env)
        while process.poll() is None:
            _sample(process.pid, seen)
            time.sleep(0.2)
        cpu: dict[str, float] = {}
        for ticks, name in seen.values():
            cpu[name] = cpu.get(name, 0.0) + ticks / TICK
        print(f"wall {time.monotonic() - started:.1f} s  cpu " + "  ".join(
            f"{name} {seconds:.1f} s" for name, seconds in cpu.items() if seconds >= 0.05)
            + f"  load1 {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
