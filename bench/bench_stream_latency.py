"""Streaming latency: an event file landing -> its predictions committed to Delta.

    .venv/bin/python bench/bench_stream_latency.py [--lake data/lakehouse --landing data/landing]
        [--files 50 --every 2 --events-per-file 10 --interval 1s] [--repo CHECKOUT]

Needs a lakehouse that `make demo` built (silver, gold, a champion), at any demo size (the 1M
and 10M lakes too: `--lake`/`--landing`). Copies it to a scratch directory (the original is not
touched), then runs the two long-lived jobs a live deployment runs, as separate processes:
`jobs/ingest.py --source card_events --continuous` (files -> bronze.card_events) and
`jobs/score_stream.py --continuous` (bronze stream -> predictions), from `--repo` (default this
checkout: another one, e.g. a worktree of an older commit, measures the baseline the same way).

Once both streams have started and scored a warm-up file (not timed), it lands `--files` files of
`--events-per-file` card events each (the demo's live events again under fresh ids), one every
`--every` seconds on a fixed schedule (not waiting for the previous file's predictions: the
demo's event rate is about 95 events per 20 s, so 10 events every 2 s), and records when each
file's last event reached bronze and when its last prediction was committed: the commit files
of bronze.card_events and gold.stream_predictions whose added data files hold the file's ids
(read from the Delta log and the Parquet files on disk with pyarrow, so this process starts no
Spark of its own). Prints one line per file, then the median, p90, p99 and max of landing ->
predictions committed and its split (landing -> bronze, bronze -> scored), and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", default="data/lakehouse")
    parser.add_argument("--landing", default="data/landing")
    parser.add_argument("--work", default="/tmp/lakeboost-bench/stream")
    parser.add_argument("--repo", default=str(REPO), help="the checkout whose jobs run (baseline: another worktree)")
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--every", type=float, default=2.0, help="seconds between landed files")
    parser.add_argument("--events-per-file", type=int, default=10)
    parser.add_argument("--interval", default="1s", help="trigger interval of both streams")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for a file's predictions")
    return parser.parse_args()


def start(repo: Path, job: str, work: Path, extra: list[str], interval: str) -> subprocess.Popen:
    sets = [f"storage.root={work}/lake", f"storage.landing={work}/landing",
            f"sources.card_events.interval={interval}", f"scoring.stream.interval={interval}"]
    argv = [sys.executable, str(repo / "jobs" / job), *extra]
    for item in sets:
        argv += ["--set", item]
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYTHONPATH": f"{repo}/lib:{repo}:{repo}/examples",
           "CUSTOMERS_JDBC_URL": f"jdbc:sqlite:{work}/landing/customers.db"}
    log = open(work / f"{job}.log", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=repo)


class CommitWatch:
    """When each id first appeared in a Delta table: the mtime of the commit file whose added
    data files hold it (each commit read once)."""

    def __init__(self, table: Path) -> None:
        self.table, self.seen = table, set[int]()
        self.first: dict[str, float] = {}

    def versions(self) -> set[int]:
        log = self.table / "_delta_log"
        return {int(p.stem) for p in log.glob("*.json")} if log.exists() else set()

    def skip_existing(self) -> None:
        self.seen |= self.versions()

    def poll(self) -> None:
        for version in sorted(self.versions() - self.seen):
            path = self.table / "_delta_log" / f"{version:020d}.json"
            committed = path.stat().st_mtime
            for line in path.read_text().splitlines():
                add = json.loads(line).get("add")
                if add and add.get("dataChange", True):
                    ids = pq.read_table(self.table / add["path"], columns=["txn_id"]).column("txn_id").to_pylist()
                    for txn_id in ids:
                        self.first.setdefault(str(txn_id), committed)
            self.seen.add(version)


def fresh_ids(line: str, prefix: str) -> tuple[str, str]:
    """The event again under new ids, so the streams treat it as new: (its txn id, its JSON)."""
    event = json.loads(line)
    event["txn_id"], event["event_id"] = prefix + event["txn_id"], prefix + event["event_id"]
    return event["txn_id"], json.dumps(event)


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]


def main() -> None:
    args = arguments()
    # A SIGTERM to the bench stops its jobs too (the `finally` below runs on SystemExit).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    repo, work = Path(args.repo).resolve(), Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copytree(args.lake, work / "lake")
    # The demo's own live-event files stay behind (already ingested and scored): the scorer's
    # copied checkpoint resumes where the demo stopped, and the new directory holds only timed files.
    shutil.copytree(args.landing, work / "landing", ignore=shutil.ignore_patterns("events_*.json"))
    # The file source's checkpoint names the original landing path; a fresh one lists only the
    # new directory (new checkpoint, new writer id: see spark.streams.BatchTxn).
    shutil.rmtree(work / "lake" / "_checkpoints" / "ingest" / "bronze" / "card_events")
    pool = [line for path in sorted((Path(args.landing) / "card_events").glob("*.json"))
            for line in path.read_text().splitlines() if line.strip()]
    os.environ.setdefault("LAKEBOOST_PII_KEY", subprocess.run([str(REPO / "scripts/demo-pii-key.sh")],
                                                              capture_output=True, text=True).stdout.strip())
    load_before = os.getloadavg()
    began = time.time()
    jobs = [start(repo, "ingest.py", work, ["--source", "card_events", "--continuous"], args.interval),
            start(repo, "score_stream.py", work, ["--continuous"], args.interval)]
    bronze, predictions = (CommitWatch(work / "lake" / "bronze" / "card_events"),
                           CommitWatch(work / "lake" / "gold" / "stream_predictions"))
    try:
        # Warm-up, not timed: both streams start, catch up with what already landed and score one
        # file of their own, as a long-running deployment has (its first micro-batch pays the
        # JVM's warm-up and reads the tables it keeps).
        bronze.skip_existing()
        predictions.skip_existing()
        warm = [fresh_ids(line, "W-") for line in pool[:args.events_per_file]]
        (work / "warm.json").write_text("\n".join(text for _, text in warm) + "\n")
        os.replace(work / "warm.json", work / "landing" / "card_events" / "warm.json")
        while not all(txn in predictions.first for txn, _ in warm):
            assert time.time() < began + args.timeout and all(j.poll() is None for j in jobs), \
                f"no predictions for the warm-up file; see {work}/*.log"
            time.sleep(0.5)
            predictions.poll()
        print(f"warm-up: both jobs started and scored a first file in {time.time() - began:.0f} s", flush=True)
        time.sleep(3)
        bronze.skip_existing()
        predictions.skip_existing()
        started = time.time()
        landed: dict[int, float] = {}
        ids: dict[int, list[str]] = {}
        per_file = args.events_per_file
        done: set[int] = set()
        rows = []
        while len(done) < args.files:
            n = len(landed)
            if n < args.files and time.time() >= started + n * args.every:
                chosen = [pool[(n * per_file + i) % len(pool)] for i in range(per_file)]
                pairs = [fresh_ids(line, f"L{n:03d}-") for line in chosen]
                staged = work / f"live_{n:03d}.json"
                staged.write_text("\n".join(text for _, text in pairs) + "\n")
                landed[n] = time.time()
                os.replace(staged, work / "landing" / "card_events" / f"live_{n:03d}.json")  # atomic
                ids[n] = [txn for txn, _ in pairs]
                continue
            bronze.poll()
            predictions.poll()
            for m in sorted(set(landed) - done):
                if all(i in predictions.first for i in ids[m]):
                    committed = max(predictions.first[i] for i in ids[m])
                    ingested = max(bronze.first.get(i, committed) for i in ids[m])
                    done.add(m)
                    rows.append((m, committed - landed[m], ingested - landed[m], committed - ingested))
                    total, to_bronze, to_scored = committed - landed[m], ingested - landed[m], committed - ingested
                    print(f"file {m}: {per_file} events landed -> predictions committed in {total:.1f} s "
                          f"(in bronze after {to_bronze:.1f} s, scored {to_scored:.1f} s later)", flush=True)
                else:
                    assert time.time() < landed[m] + args.timeout, f"file {m}: no predictions; see {work}/*.log"
            assert all(j.poll() is None for j in jobs), f"a job exited; see {work}/*.log"
            time.sleep(0.05)
        total, to_bronze, to_scored = ([r[k] for r in rows] for k in (1, 2, 3))

        def spread(values: list[float]) -> str:
            return (f"median {statistics.median(values):.1f} s, p90 {percentile(values, 90):.1f} s, "
                    f"p99 {percentile(values, 99):.1f} s, max {max(values):.1f} s")

        print(f"latency over {len(rows)} files of {per_file} events, one every {args.every:g} s "
              f"(trigger interval {args.interval}): {spread(total)}")
        print(f"  landing -> bronze: {spread(to_bronze)}")
        print(f"  bronze -> scored:  {spread(to_scored)}")
        print(f"load average (1 min) {load_before[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end; "
              f"{time.time() - began:.0f} s in all (both jobs' start included)")
    finally:
        for job in jobs:
            os.killpg(job.pid, signal.SIGTERM)
        for job in jobs:
            try:
                job.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(job.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
