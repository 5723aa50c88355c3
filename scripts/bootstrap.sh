#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: check Java and Maven, create .venv, install lakeboost
# with its test/dev extras. Re-runs are no-ops unless setup.py changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LAKEBOOST_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

need() { command -v "$1" >/dev/null 2>&1 || { echo "lakeboost: $1 not found; $2" >&2; exit 3; }; }
need "$PYTHON" "install Python 3.10+ (Debian: apt-get install python3 python3-venv)"
need java "install a JDK 17 (Debian: apt-get install openjdk-17-jdk-headless) or set JAVA_HOME"
need mvn "install Maven (Debian: apt-get install maven); it fetches Delta and the JDBC drivers once"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || { echo "lakeboost: Python 3.10+ needed, found $("$PYTHON" --version)" >&2; exit 3; }

if [ ! -x "$VENV/bin/python" ]; then
  echo "lakeboost: creating virtualenv $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
STAMP="$VENV/.lakeboost-installed"
WANT="$(cat "$ROOT/setup.py" | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "lakeboost: installing dependencies into $VENV (first run takes a few minutes)" >&2
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e "$ROOT[spark,test,dev]"
  echo "$WANT" > "$STAMP"
fi
# Resolve the JVM packages now (Maven, cached under ~/.cache/lakeboost/jars) so the first
# Spark start is not also the first download.
"$VENV/bin/python" -m lakeboost.spark.prefetch >&2
