#!/usr/bin/env bash
# Submit a lakeboost job with the package, config and JVM packages shipped along.
#
#   ./spark-submit.sh [spark-submit options] jobs/<job>.py [job options]
#   ./spark-submit.sh --master spark://host:7077 jobs/pipeline.py --env cluster
#
# Options before the job file go to spark-submit (default --master local[*]); options after it
# go to the job. Prints the exact spark-submit command before running it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${LAKEBOOST_VENV:-$ROOT/.venv}"
"$ROOT/scripts/bootstrap.sh"

SUBMIT_ARGS=()
JOB=""
while [ $# -gt 0 ]; do
  case "$1" in
    *.py) JOB="$1"; shift; break ;;
    *) SUBMIT_ARGS+=("$1"); shift ;;
  esac
done
[ -n "$JOB" ] || { echo "usage: $0 [spark-submit options] jobs/<job>.py [job options]" >&2; exit 2; }
[ -f "$JOB" ] || { echo "spark-submit.sh: job file $JOB not found (jobs: $(ls "$ROOT"/jobs/*.py | xargs -n1 basename | tr '\n' ' '))" >&2; exit 2; }
case " ${SUBMIT_ARGS[*]:-} " in *" --master "*) ;; *) SUBMIT_ARGS=(--master "local[*]" "${SUBMIT_ARGS[@]+"${SUBMIT_ARGS[@]}"}") ;; esac

BUILD="$ROOT/build/submit"
rm -rf "$BUILD" && mkdir -p "$BUILD"
# The package as a zip for --py-files, the config directory as an archive.
(cd "$ROOT/lib" && "$VENV/bin/python" -m zipfile -c "$BUILD/lakeboost.zip" lakeboost)
(cd "$ROOT" && "$VENV/bin/python" -m zipfile -c "$BUILD/conf.zip" conf)
JARS="$("$VENV/bin/python" -m lakeboost.spark.prefetch --separator ,)"

CMD=("$VENV/bin/spark-submit" "${SUBMIT_ARGS[@]}"
     --conf "spark.pyspark.python=${PYSPARK_PYTHON:-$VENV/bin/python}"
     --py-files "$BUILD/lakeboost.zip"
     --archives "$BUILD/conf.zip#lakeboost_conf"
     --jars "$JARS"
     "$JOB" "$@")
echo "spark-submit.sh: ${CMD[*]}" >&2
export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
exec "${CMD[@]}"
