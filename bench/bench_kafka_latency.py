"""Streaming latency through Kafka: a batch of events sent to the topic -> its predictions committed.

    .venv/bin/python bench/bench_kafka_latency.py [--lake data/lakehouse --landing data/landing] \\
        [--batches 50] [--every 5] [--interval 1s]

The Kafka twin of bench/bench_stream_latency.py. Needs a lakehouse that `make demo` built.
Copies it to a scratch directory, starts a single-node KRaft broker (lakeboost.spark.kafka_broker)
and the two long-lived jobs of a live deployment, with `--env local+kafka` (the demo's
`card_events` source is the topic): `jobs/ingest.py --source card_events --continuous`
(topic -> bronze.card_events) and `jobs/score_stream.py --continuous` (bronze -> predictions).
Kafka's console producer (one JVM, fed line by line) sends one file's worth of the demo's live
events with fresh ids every `--every` seconds; a batch's latency runs from the moment its lines
were handed to the producer to the commit of gold.stream_predictions that completes its rows,
read from the Delta log on disk (this process starts no Spark). Prints each batch and the
median, p90, p99 and max.
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
sys.path.insert(0, str(REPO / "lib"))

from lakeboost.spark.kafka_broker import KafkaBroker, console_producer  # noqa: E402

TOPIC = "bench_card_events"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", default="data/lakehouse")
    parser.add_argument("--landing", default="data/landing")
    parser.add_argument("--work", default="/tmp/lakeboost-bench/kafka")
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between sent batches")
    parser.add_argument("--interval", default="1s", help="trigger interval of both streams")
    return parser.parse_args()


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


def start(job: str, work: Path, extra: list[str], interval: str, servers: str) -> subprocess.Popen:
    sets = [f"storage.root={work}/lake", f"storage.landing={work}/landing",
            f"sources.card_events.interval={interval}", f"scoring.stream.interval={interval}"]
    argv = [sys.executable, str(REPO / "jobs" / job), "--env", "local+kafka", *extra]
    for item in sets:
        argv += ["--set", item]
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "KAFKA_BOOTSTRAP_SERVERS": servers,
           "DEMO_KAFKA_TOPIC": TOPIC, "CUSTOMERS_JDBC_URL": f"jdbc:sqlite:{work}/landing/customers.db"}
    log = open(work / f"{job}.log", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def keyed(line: str, prefix: str) -> str:
    """`customer_id<TAB>event` with new txn and event ids, so the streams treat it as new."""
    event = json.loads(line)
    event["txn_id"], event["event_id"] = prefix + event["txn_id"], prefix + event["event_id"]
    return f"{event['customer_id']}\t{json.dumps(event)}"


def wait_quiet(table: Path, jobs: list[subprocess.Popen], seconds: float = 10.0) -> None:
    """Until the table has commits and none came in the last `seconds`."""
    while True:
        before = commits(table) if table.exists() else {}
        time.sleep(seconds)
        if before and commits(table) == before:
            return
        assert all(j.poll() is None for j in jobs), "a job exited; see its log in the work directory"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    args = arguments()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copytree(args.lake, work / "lake")
    shutil.copytree(args.landing, work / "landing", ignore=shutil.ignore_patterns("events_*.json"))
    # bronze.card_events starts afresh from the topic (the file source's checkpoint cannot serve a
    # Kafka query, and the Kafka lineage columns are a schema change a running Delta stream stops
    # on), and so does the scorer: its checkpoint, its live events and its predictions.
    for gone in ("_checkpoints/ingest/bronze/card_events", "_checkpoints/stream_score", "bronze/card_events",
                 "silver/live_transactions", "gold/stream_predictions"):
        shutil.rmtree(work / "lake" / gone, ignore_errors=True)
    template = sorted((Path(args.landing) / "card_events").glob("*.json"))[0].read_text().splitlines()
    os.environ.setdefault("LAKEBOOST_PII_KEY", subprocess.run([str(REPO / "scripts/demo-pii-key.sh")],
                                                              capture_output=True, text=True).stdout.strip())
    broker = KafkaBroker(work / "kafka", partitions=2).start()
    print(f"broker {broker.bootstrap_servers} started in {broker.start_seconds} s", flush=True)
    producer = console_producer(broker.bootstrap_servers, TOPIC)
    assert producer.stdin is not None
    jobs: list[subprocess.Popen] = []
    predictions = work / "lake" / "gold" / "stream_predictions"
    bronze = work / "lake" / "bronze" / "card_events"
    try:
        # One warm-up batch creates the topic and starts both streams' first micro-batches.
        producer.stdin.write("\n".join(keyed(line, "W") for line in template) + "\n")
        producer.stdin.flush()
        jobs = [start("ingest.py", work, ["--source", "card_events", "--continuous"], args.interval,
                      broker.bootstrap_servers)]
        while not (bronze / "_delta_log").exists():  # the scorer reads bronze: it must exist first
            assert jobs[0].poll() is None, f"the ingest job exited; see {work}/ingest.py.log"
            time.sleep(0.5)
        jobs.append(start("score_stream.py", work, ["--continuous"], args.interval, broker.bootstrap_servers))
        wait_quiet(predictions, jobs)
        latencies, in_bronze = [], []
        for n in range(args.batches):
            known, known_bronze = commits(predictions), commits(bronze)
            lines = [keyed(line, f"K{n:03d}") for line in template]
            sent = time.time()
            producer.stdin.write("\n".join(lines) + "\n")
            producer.stdin.flush()
            deadline = sent + 600
            while True:
                new = sorted((t, rows) for v, (t, rows) in commits(predictions).items() if v not in known)
                if sum(rows for _, rows in new) >= len(lines):
                    committed = max(t for t, _ in new)
                    break
                assert time.time() < deadline and all(j.poll() is None for j in jobs), f"no predictions; {work}/*.log"
                time.sleep(0.1)
            ingested = max((t for v, (t, rows) in commits(bronze).items() if v not in known_bronze and rows),
                           default=committed)
            latencies.append(committed - sent)
            in_bronze.append(ingested - sent)
            print(f"batch {n}: {len(lines)} events sent -> predictions committed in {committed - sent:.2f} s "
                  f"(in bronze after {ingested - sent:.2f} s)", flush=True)
            time.sleep(max(0.0, args.every - (time.time() - sent)))
        print(f"latency over {len(latencies)} Kafka batches: median {statistics.median(latencies):.2f} s, "
              f"p90 {percentile(latencies, 0.9):.2f} s, p99 {percentile(latencies, 0.99):.2f} s, "
              f"max {max(latencies):.2f} s; sent -> bronze median {statistics.median(in_bronze):.2f} s "
              f"(trigger interval {args.interval}, a batch every {args.every} s)")
    finally:
        for job in jobs:
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGTERM)
                job.wait(timeout=60)
        producer.stdin.close()
        producer.terminate()
        producer.wait(timeout=30)
        broker.stop()


if __name__ == "__main__":
    main()
