# Sourced by bootstrap.sh and install-airflow.sh: the Python lakeboost runs on (3.12 or 3.13;
# xgboost 3.3+, the first with xgboost.spark over Spark Connect, needs 3.12, and pyspark 4.2
# supports up to 3.13). `find_python` prints the first suitable interpreter: $PYTHON when given,
# then python3.12, python3.13, python3, then pyenv's installed versions (a pyenv shim names a
# version that is installed but not selected, and fails); nothing when there is none.
suitable() { "$1" -c 'import sys, venv; sys.exit(not ((3, 12) <= sys.version_info[:2] < (3, 14)))' >/dev/null 2>&1; }
find_python() {
  local c
  for c in ${PYTHON:-} python3.12 python3.13 python3; do
    if command -v "$c" >/dev/null 2>&1 && suitable "$(command -v "$c")"; then command -v "$c"; return; fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    for c in "$(pyenv root)"/versions/3.12*/bin/python3 "$(pyenv root)"/versions/3.13*/bin/python3; do
      if [ -x "$c" ] && suitable "$c"; then echo "$c"; return; fi
    done
  fi
}
