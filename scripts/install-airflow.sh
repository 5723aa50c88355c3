#!/usr/bin/env bash
# Idempotent: a virtualenv of its own for Airflow (default .venv-airflow) with the Airflow release
# and Spark provider the DAG is checked against, so Airflow's pins never touch the runtime's .venv.
# Prints the virtualenv's python on stdout (for LAKEBOOST_AIRFLOW_PYTHON). Re-runs are no-ops
# unless the pins changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LAKEBOOST_AIRFLOW_VENV:-$ROOT/.venv-airflow}"
PINS="$ROOT/scheduling/airflow/requirements.txt"
# Airflow's own constraints file (one per release and Python) is fetched by URL from GitHub;
# where only PyPI is reachable, the set it resolved to is checked in instead.
CONSTRAINTS="$ROOT/scheduling/airflow/constraints.txt"
# Python 3.12 or 3.13, found as scripts/find-python.sh says.
. "$ROOT/scripts/find-python.sh"
# <venv>.lock is held while this runs: concurrent installs wait for one another, and the Airflow
# tests (tests/scheduling/test_airflow.py) wait for an install under way (.ci/run runs it beside the suite).
mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock 9
if [ -x "$VENV/bin/python" ] && ! suitable "$VENV/bin/python"; then
  echo "install-airflow: $VENV has $("$VENV/bin/python" --version); recreating it" >&2
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  FOUND="$(find_python)"
  if [ -z "$FOUND" ]; then
    echo "install-airflow: Python 3.12 or 3.13 needed, found none (tried ${PYTHON:-(PYTHON unset)}, python3.12," >&2
    echo "  python3.13, python3 and pyenv's versions); set PYTHON=/path/to/python3.12" >&2
    exit 3
  fi
  echo "install-airflow: creating virtualenv $VENV with $FOUND" >&2
  "$FOUND" -m venv "$VENV"
fi
STAMP="$VENV/.lakeboost-airflow-installed"
CONSTRAINT_ARGS=()
if [ -f "$CONSTRAINTS" ]; then CONSTRAINT_ARGS=(-c "$CONSTRAINTS"); fi
# The stamp changes with the pins, the constraints and this script.
WANT="$(cat "$PINS" "${CONSTRAINT_ARGS[@]:1}" "$0" | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "install-airflow: installing $(grep -v '^#' "$PINS" | xargs) into $VENV" >&2
  "$VENV/bin/python" -m pip install -q -r "$PINS" "${CONSTRAINT_ARGS[@]}" >&2
  echo "$WANT" > "$STAMP"
fi
echo "$VENV/bin/python"
