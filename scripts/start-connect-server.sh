#!/usr/bin/env bash
# A local Spark Connect server with the Delta jars and Delta's session extension, for running
# lakeboost the way Databricks serverless / shared compute and Spark 4 thin clients do:
#   scripts/start-connect-server.sh --port 15002 --pythonpath examples
#   SPARK_REMOTE=sc://127.0.0.1:15002 lakeboost run pipeline --conf-dir conf
# Options: python -m lakeboost.spark.connect_server --help
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$here/.venv/bin/python}"
PYTHONPATH="$here/lib${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m lakeboost.spark.connect_server --conf-dir "$here/conf" "$@"
