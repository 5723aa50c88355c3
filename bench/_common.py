"""What every benchmark shares: its arguments, a demo config rooted in the work directory, the peak
memory of the process tree and the largest task of a group of Spark jobs."""

from __future__ import annotations

import argparse
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from lakeboost.config import LakeboostConfig, load_config
from lakeboost.logs import configure_logging
from pyspark.sql import SparkSession

# The local config runs the JVM on C1 only (conf/local/spark.yml: short runs on small data);
# a bench at a million rows and more gets the JVM's full tiered compilation back.
LARGE_DATA_ROWS = 1_000_000
FULL_JIT = {"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=4"}


def jvm_conf(rows: int) -> dict[str, str]:
    """Spark conf the bench adds for `rows` demo transactions."""
    return FULL_JIT if rows >= LARGE_DATA_ROWS else {}


def bench_arguments(description: str,
                    extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """--rows, --days, --work, and whatever `extra` adds for one benchmark."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=None, help="days of demo data (default: the config's)")
    parser.add_argument("--work", default="/tmp/lakeboost-bench")
    if extra:
        extra(parser)
    args = parser.parse_args()
    configure_logging("WARNING")
    return args


def bench_config(args: argparse.Namespace, overrides: list[str] | None = None) -> tuple[LakeboostConfig, Path]:
    """The demo config at `--rows` (plus `overrides`), its lakehouse and landing under WORK/rows<N>."""
    work = Path(args.work) / f"rows{args.rows}"
    os.environ.setdefault("LAKEBOOST_PII_KEY", "bench-only-key-0123456789abcdef")
    days = [f"demo.days={args.days}"] if args.days else []
    config = load_config("local", [f"storage.root={work}/lake", f"storage.landing={work}/landing",
                                   f"demo.rows={args.rows}", *days, *(overrides or [])],
                         environ={**os.environ, "CUSTOMERS_JDBC_URL": f"jdbc:sqlite:{work}/landing/customers.db"})
    return config, work


class PeakMemory:
    """Peak resident memory of this process and all its descendants (the Spark JVM, its Python
    workers), sampled from /proc every `interval` seconds while the `with` block runs.

    `peak` is the largest sum over the tree, `peak_jvm` and `peak_python` the parts of that
    sample in java and python processes (Linux only; elsewhere every figure stays 0).
    """

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.peak = self.peak_jvm = self.peak_python = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            total = jvm = python = 0
            for name, rss in _tree_rss(os.getpid()):
                total += rss
                jvm += rss if name == "java" else 0
                python += rss if name.startswith("python") else 0
            if total > self.peak:
                self.peak, self.peak_jvm, self.peak_python = total, jvm, python
            self._stop.wait(self.interval)

    def text(self) -> str:
        return (f"peak_rss_gib={self.peak / 2**30:.2f} (jvm={self.peak_jvm / 2**30:.2f} "
                f"python={self.peak_python / 2**30:.2f})")


def _tree_rss(root: int) -> list[tuple[str, int]]:
    """(command name, resident bytes) of `root` and its descendants."""
    children: dict[int, list[int]] = {}
    stats: dict[int, tuple[str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line)
        except OSError:  # the process ended meanwhile
            continue
        pid = int(entry.name)
        children.setdefault(int(status["PPid"]), []).append(pid)
        rss_kib = int(status.get("VmRSS", "0 kB").split()[0])
        stats[pid] = (status["Name"].strip(), rss_kib * 1024)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            found.append(stats[pid])
        todo.extend(children.get(pid, []))
    return found


def largest_tasks(spark: SparkSession, job_group: str, min_records: int = 0) -> list[str]:
    """For each stage of the jobs run under `job_group` (SparkContext.setJobGroup) that read at
    least `min_records`: its tasks, the records they read (input or shuffle) and the largest
    task's share, from the live UI's REST API."""
    sc = spark.sparkContext
    if not sc.uiWebUrl:
        return ["(spark.ui.enabled is false: no task figures)"]
    tracker = sc.statusTracker()
    stages = sorted({s for j in tracker.getJobIdsForGroup(job_group) for s in tracker.getJobInfo(j).stageIds})
    lines = []
    for stage in stages:
        url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/stages/{stage}"
        try:
            with urllib.request.urlopen(url) as response:
                attempt = json.load(response)[0]
            if attempt["status"] != "COMPLETE":  # skipped: its shuffle output was reused
                continue
            with urllib.request.urlopen(f"{url}/{attempt['attemptId']}/taskSummary?quantiles=0.5,1.0") as response:
                summary = json.load(response)
        except urllib.error.HTTPError as exc:
            lines.append(f"stage={stage:<4} (no task figures: {exc})")
            continue
        shuffle = summary.get("shuffleReadMetrics", {}).get("readRecords", [0, 0])
        scanned = summary.get("inputMetrics", {}).get("recordsRead", [0, 0])
        records = attempt["shuffleReadRecords"] + attempt["inputRecords"]
        if records < min_records:
            continue
        largest = max(shuffle[-1], scanned[-1])
        lines.append(f"stage={stage:<4} tasks={attempt['numCompleteTasks']:>4}  records={records:>10}  "
                     f"largest_task_records={largest:>10.0f}  median_task={max(shuffle[0], scanned[0]):>10.0f}  "
                     f"largest_share={largest / records if records else 0:.3f}  {attempt['name'][:50]}")
    return lines
