"""Streaming latency: an event file landing -> its predictions committed to Delta.

    .venv/bin/python bench/bench_stream_latency.py [--lake data/lakehouse --landing data/landing] [--files 6]

Needs a lakehouse that `make demo` built (silver, gold, a champion). Copies it to a scratch
directory (the original is not touched), then runs the two long-lived jobs a live deployment
runs, as separate processes: `jobs/ingest.py --source card_events --continuous` (files ->
bronze.card_events) and `jobs/score_stream.py --continuous` (bronze stream -> predictions).
It drops one file of new card events (the demo's live events with fresh ids, at the demo's
rate of about one file per `--every` seconds) and records when each file's predictions were
committed: the commit file of gold.stream_predictions whose row count matches, read from the
Delta log on disk, so this process starts no Spark of its own. Prints one line per file and
the median and maximum.
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

REPO = Path(__file__).resolve().parents[1]


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", default="data/lakehouse")
    parser.add_argument("--landing", default="data/landing")
    parser.add_argument("--work", default="/tmp/lakeboost-bench/stream")
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--every", type=float, default=20.0, help="seconds between landed files")
    parser.add_argument("--interval", default="2s", help="trigger interval of both streams")
    return parser.parse_args()


def start(job: str, work: Path, extra: list[str], interval: str) -> subprocess.Popen:
    sets = [f"storage.root={work}/lake", f"storage.landing={work}/landing",
            f"sources.card_events.interval={interval}", f"scoring.stream.interval={interval}",
            "sources.card_events.max_files_per_trigger=1", "scoring.stream.max_files_per_trigger=1"]
    argv = [sys.executable, str(REPO / "jobs" / job), *extra]
    for item in sets:
        argv += ["--set", item]
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1",
           "CUSTOMERS_JDBC_URL": f"jdbc:sqlite:{work}/landing/customers.db"}
    log = open(work / f"{job}.log", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def commits(table: Path) -> dict[int, tuple[float, int]]:
    """Delta version -> (commit file mtime, rows written) for the table's commits so far."""
    out = {}
    for path in (table / "_delta_log").glob("*.json"):
        rows = 0
        for line in path.read_text().splitlines():
            action = json.loads(line)
            if "commitInfo" in action:
                rows = int(action["commitInfo"].get("operationMetrics", {}).get("numOutputRows", 0))
        out[int(path.stem)] = (path.stat().st_mtime, rows)
    return out


def fresh_ids(line: str, prefix: str) -> str:
    """The event again under new ids, so the streams treat it as new."""
    event = json.loads(line)
    event["txn_id"], event["event_id"] = prefix + event["txn_id"], prefix + event["event_id"]
    return json.dumps(event)


def main() -> None:
    args = arguments()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copytree(args.lake, work / "lake")
    # The demo's own live-event files stay behind (already ingested and scored): the scorer's
    # copied checkpoint resumes where the demo stopped, and the new directory holds only timed files.
    shutil.copytree(args.landing, work / "landing", ignore=shutil.ignore_patterns("events_*.json"))
    # The file source's checkpoint names the original landing path; a fresh one lists only the
    # new directory (new checkpoint, new writer id: see spark.streams.BatchTxn).
    shutil.rmtree(work / "lake" / "_checkpoints" / "ingest" / "bronze" / "card_events")
    template = sorted((Path(args.landing) / "card_events").glob("*.json"))[0].read_text().splitlines()
    os.environ.setdefault("LAKEBOOST_PII_KEY", subprocess.run([str(REPO / "scripts/demo-pii-key.sh")],
                                                              capture_output=True, text=True).stdout.strip())
    jobs = [start("ingest.py", work, ["--source", "card_events", "--continuous"], args.interval),
            start("score_stream.py", work, ["--continuous"], args.interval)]
    predictions = work / "lake" / "gold" / "stream_predictions"
    try:
        # Let both streams catch up with what already landed before timing anything.
        while True:
            before = commits(predictions) if predictions.exists() else {}
            time.sleep(15)
            if before and commits(predictions) == before:
                break
            assert all(j.poll() is None for j in jobs), f"a job exited; see {work}/*.log"
        latencies = []
        bronze = work / "lake" / "bronze" / "card_events"
        in_bronze = []
        for n in range(args.files):
            known, known_bronze = commits(predictions), commits(bronze)
            lines = [fresh_ids(line, f"L{n:02d}") for line in template]
            staged = work / f"live_{n:03d}.json"
            staged.write_text("\n".join(lines) + "\n")
            target = work / "landing" / "card_events" / f"live_{n:03d}.json"
            landed = time.time()
            os.replace(staged, target)  # atomic: the file source never sees half a file
            deadline = landed + 600
            while True:
                new = {v: c for v, c in commits(predictions).items() if v not in known and c[1] == len(lines)}
                if new:
                    committed = min(t for t, _ in new.values())
                    break
                assert time.time() < deadline and all(j.poll() is None for j in jobs), f"no predictions; {work}/*.log"
                time.sleep(0.2)
            ingested = min(t for v, (t, rows) in commits(bronze).items()
                           if v not in known_bronze and rows == len(lines))
            latencies.append(committed - landed)
            in_bronze.append(ingested - landed)
            print(f"file {n}: {len(lines)} events landed -> predictions committed in {committed - landed:.1f} s "
                  f"(in bronze after {ingested - landed:.1f} s, scored {committed - ingested:.1f} s later)", flush=True)
            time.sleep(max(0.0, args.every - (time.time() - landed)))
        print(f"latency over {len(latencies)} files: median {statistics.median(latencies):.1f} s, "
              f"max {max(latencies):.1f} s; of which landing -> bronze median {statistics.median(in_bronze):.1f} s "
              f"(trigger interval {args.interval}, one file per micro-batch)")
    finally:
        for job in jobs:
            os.killpg(job.pid, signal.SIGTERM)
            job.wait(timeout=60)


if __name__ == "__main__":
    main()
