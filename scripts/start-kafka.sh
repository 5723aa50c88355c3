#!/usr/bin/env bash
# A local single-node Kafka broker (KRaft mode, Kafka's own jars from Maven Central, no Docker)
# on 127.0.0.1, in the foreground until Ctrl-C:
#   scripts/start-kafka.sh                     # port 9092, storage in a fresh temporary directory
#   scripts/start-kafka.sh --port 0 --dir /tmp/kafka --partitions 2
#   KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 make demo   # the demo's live events through Kafka
# The first start resolves the broker's jars with Maven into ~/.cache/lakeboost/jars (seconds).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$here/.venv/bin/python}"
args=("$@")
if [[ " ${args[*]-} " != *" --dir "* ]]; then
  args+=(--dir "$(mktemp -d -t lakeboost-kafka.XXXXXX)")
fi
PYTHONPATH="$here/lib${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m lakeboost.spark.kafka_broker "${args[@]}"
