#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: check Java and Maven, create .venv, install lakeboost
# with its test/dev extras. Re-runs are no-ops unless setup.py changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LAKEBOOST_VENV:-$ROOT/.venv}"
need() { command -v "$1" >/dev/null 2>&1 || { echo "lakeboost: $1 not found; $2" >&2; exit 3; }; }
# Python 3.12 or 3.13, found as scripts/find-python.sh says.
. "$ROOT/scripts/find-python.sh"
FOUND="$(find_python)"
if [ -z "$FOUND" ]; then
  echo "lakeboost: Python 3.12 or 3.13 needed (xgboost 3.3+ for Spark Connect needs 3.12+; pyspark 4.2 supports up to 3.13)," >&2
  echo "  found none: tried ${PYTHON:-(PYTHON unset)}, python3.12, python3.13, python3 and pyenv's versions." >&2
  echo "  Install one (Debian 13: apt-get install python3 python3-venv; pyenv install 3.12) or set PYTHON=/path/to/python3.12" >&2
  exit 3
fi
PYTHON="$FOUND"
need java "install a JDK 17 (Debian: apt-get install openjdk-17-jdk-headless) or set JAVA_HOME"
need mvn "install Maven (Debian: apt-get install maven); it fetches Delta and the JDBC drivers once"

# A virtualenv made by an older Python (before the move to 3.12) is replaced, not patched.
if [ -x "$VENV/bin/python" ] && ! suitable "$VENV/bin/python"; then
  echo "lakeboost: $VENV has $("$VENV/bin/python" --version); recreating it with $("$PYTHON" --version)" >&2
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "lakeboost: creating virtualenv $VENV with $PYTHON" >&2
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
"$VENV/bin/python" -m lakeboost.spark.prefetch --count >&2
