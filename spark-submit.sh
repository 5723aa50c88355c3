#!/usr/bin/env bash
# Submit a lakeboost job with the package, config, Python environment and JVM packages shipped along.
#
#   ./spark-submit.sh [spark-submit options] jobs/<job>.py [job options]
#   ./spark-submit.sh --master spark://host:7077 jobs/pipeline.py --env cluster
#   ./spark-submit.sh --master yarn --deploy-mode cluster jobs/pipeline.py --env cluster
#   ./spark-submit.sh --pack-env    build the executors' packed environment now and print its path
#                                   (what a first non-local submission would do; CI runs it in the
#                                   background before the suite)
#
# Options before the job file go to spark-submit unchanged (default --master local[*]); options
# after it go to the job. Prints the exact spark-submit command before running it.
#
# Shipped with every job: lib/lakeboost as a zip (--py-files), conf/ as an archive unpacked as
# `lakeboost_conf`, and the JVM packages' jars (--jars); --py-files, --archives and --jars given
# here are added to those. The job reads the repo's conf/ when the driver runs here (client
# mode), `lakeboost_conf/conf` in cluster deploy mode (passed as --conf-dir to jobs/*.py).
#
# For a non-local master the executors (and the driver in cluster deploy mode) run Python from
# a packed environment, `--archives <env>.tar.gz#environment` with
# spark.pyspark.python=./environment/bin/python. The dev venv cannot be packed as it is: it has
# lakeboost installed in editable mode (venv-pack refuses it) and the test/dev tools. So the
# pack is a separate venv with lakeboost's runtime requirements at exactly the dev venv's
# versions (`python -m lakeboost.pack runtime-pins`; lakeboost itself always comes
# from the --py-files zip), built once per dependency set and Python under build/pyenv/<hash>/
# (a few minutes; old ones are not deleted, a running job may still serve its archive). gzip
# level 1: the pack is built on the submitting machine's clock and read once per executor, so
# the faster compression beats the smaller archive.
# venv-pack leaves the interpreter out: every node needs the same Python at the same path, or
# set LAKEBOOST_PACK_PYTHON_PREFIX to its prefix there.
#
# Environment:
#   LAKEBOOST_PACK_ENV=0           do not pack; executors run LAKEBOOST_SUBMIT_PYTHON (or the venv's
#                                  python): only for clusters whose nodes all have it at that path
#   LAKEBOOST_SUBMIT_PYTHON=PATH   the executors' Python (implies LAKEBOOST_PACK_ENV=0)
#   LAKEBOOST_PACK_PYTHON_PREFIX   the interpreter's prefix on the nodes (venv-pack --python-prefix)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${LAKEBOOST_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
# The executors never start a JVM from the packed environment: pyspark's bundled jars stay out
# (and the CUDA libraries too, unless the job's config trains on a GPU: pack-excludes).
PACK_EXCLUDE=('lib/python*/site-packages/pyspark/jars/*')
die() { echo "spark-submit.sh: $2" >&2; exit "$1"; }
"$ROOT/scripts/bootstrap.sh"
PACK_ONLY=0
if [ "${1:-}" = --pack-env ]; then
  PACK_ONLY=1; shift
  [ $# -eq 0 ] || die 2 "--pack-env takes no other arguments (it packs for the default config)"
fi

# Split the arguments: spark-submit options (values kept with their option), the job, its options.
SUBMIT_ARGS=() CONF_KEYS=" " JOB="" MASTER="" DEPLOY_MODE="client" USER_PY_FILES="" USER_ARCHIVES="" USER_JARS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --verbose|-v|--supervise|--help|-h|--version) SUBMIT_ARGS+=("$1"); shift; continue ;;
    --*=*) opt="${1%%=*}"; val="${1#*=}"; shift ;;
    -*) [ $# -ge 2 ] || die 2 "spark-submit option $1 needs a value"; opt="$1"; val="$2"; shift 2 ;;
    *.py) JOB="$1"; shift; break ;;
    *) die 2 "unexpected argument $1 before the job file (usage: $0 [spark-submit options] jobs/<job>.py [job options])" ;;
  esac
  case "$opt" in
    --py-files) USER_PY_FILES="$val"; continue ;;
    --archives) USER_ARCHIVES="$val"; continue ;;
    --jars) USER_JARS="$val"; continue ;;
    --master) MASTER="$val" ;;
    --deploy-mode) DEPLOY_MODE="$val" ;;
    --conf|-c) CONF_KEYS+="${val%%=*} "
               if [ "${val%%=*}" = spark.submit.deployMode ]; then DEPLOY_MODE="${val#*=}"; fi ;;
  esac
  SUBMIT_ARGS+=("$opt" "$val")
done
if [ "$PACK_ONLY" = 0 ]; then
[ -n "$JOB" ] || die 2 "usage: $0 [spark-submit options] jobs/<job>.py [job options]"
[ -f "$JOB" ] || die 2 "job file $JOB not found (jobs: $(ls "$ROOT"/jobs/*.py | xargs -n1 basename | tr '\n' ' '))"
fi
if [ -z "$MASTER" ]; then MASTER="local[*]"; SUBMIT_ARGS=(--master "$MASTER" "${SUBMIT_ARGS[@]+"${SUBMIT_ARGS[@]}"}"); fi
case "$MASTER" in local|local\[*) LOCAL=1 ;; *) LOCAL=0 ;; esac
JOB_ARGS=("$@")
has_conf() { case "$CONF_KEYS" in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
add_conf() { has_conf "$1" || SUBMIT_ARGS+=(--conf "$1=$2"); }
join() { local IFS=,; echo "$*"; }
shell_words() {  # the arguments as one line a shell reads back unchanged
  local arg words=()
  for arg in "$@"; do
    if [[ "$arg" =~ ^[A-Za-z0-9_./:=,@%+#-]+$ ]]; then words+=("$arg")
    elif [[ "$arg" != *"'"* ]]; then words+=("'$arg'")
    else words+=("$(printf '%q' "$arg")"); fi
  done
  echo "${words[*]}"
}
# What is echoed (and appended to cron's log) keeps no credential: a `--set ...password=...`, a
# `--conf ...secret=...` or a password in a JDBC URL is printed as `...=***` (lakeboost.redact,
# the one pattern the jobs use too); the command itself runs with the real values.
redacted() { PYTHONPATH="$ROOT/lib${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m lakeboost.redact; }

# Pip-installed pyspark finds its home with whatever `python3` is on PATH; point it at the venv's.
SPARK_HOME="${SPARK_HOME:-$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')}"
export SPARK_HOME

pack_environment() {  # sets ENV_ARCHIVE to the packed runtime environment, building it if needed
  "$PY" -c 'import venv_pack' 2>/dev/null || "$PY" -m pip install -q 'venv-pack>=0.2' >&2
  local requirements constraints key dir prefix=()
  requirements="$("$PY" -c 'from importlib.metadata import requires
print("\n".join(r.split(";")[0] for r in requires("lakeboost") or []
                if "extra ==" not in r or "extra == \"spark\"" in r))')"
  constraints="$("$PY" -m lakeboost.pack runtime-pins)"  # the versions installed here
  [ -z "${LAKEBOOST_PACK_PYTHON_PREFIX:-}" ] || prefix=(--python-prefix "$LAKEBOOST_PACK_PYTHON_PREFIX")
  # What this job's config lets the pack leave out (the CUDA libraries unless it trains on a GPU).
  local job_conf=() pattern
  case " ${JOB_ARGS[*]:-} " in *" --conf-dir "*|*" --conf-dir="*) ;; *) job_conf=(--conf-dir "${LAKEBOOST_CONF_DIR:-$ROOT/conf}") ;; esac
  while IFS= read -r pattern; do [ -z "$pattern" ] || PACK_EXCLUDE+=("$pattern"); done \
    < <("$PY" -m lakeboost.pack pack-excludes "${JOB_ARGS[@]+"${JOB_ARGS[@]}"}" "${job_conf[@]+"${job_conf[@]}"}")
  key="$(printf '%s\n' "$requirements" "$constraints" "${prefix[@]+"${prefix[@]}"}" "${PACK_EXCLUDE[@]}" \
         "$("$PY" -c 'import platform, sys; print(sys.version, platform.machine())')" | sha256sum | cut -c1-16)"
  dir="$ROOT/build/pyenv/$key"
  ENV_ARCHIVE="$dir/lakeboost-env.tar.gz"
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock 9  # concurrent submissions wait for one build
  if [ ! -f "$ENV_ARCHIVE" ]; then
    echo "spark-submit.sh: packing the executors' Python environment into $ENV_ARCHIVE (once per dependency set)" >&2
    printf '%s\n' "$requirements" >"$dir/requirements.txt"
    printf '%s\n' "$constraints" >"$dir/constraints.txt"
    local excludes=()
    for pattern in "${PACK_EXCLUDE[@]}"; do excludes+=(--exclude "$pattern"); done
    rm -rf "$dir/venv"
    { "$PY" -m venv "$dir/venv" \
        && "$dir/venv/bin/python" -m pip install -q -r "$dir/requirements.txt" -c "$dir/constraints.txt" \
        && "$VENV/bin/venv-pack" -q -f -p "$dir/venv" -o "$ENV_ARCHIVE.part" --format tar.gz --compress-level 1 "${excludes[@]}" \
             "${prefix[@]+"${prefix[@]}"}"; } >&2 \
      || die 3 "packing the Python environment failed (see above); on a cluster whose nodes all have $PY, set LAKEBOOST_PACK_ENV=0"
    mv "$ENV_ARCHIVE.part" "$ENV_ARCHIVE"
    rm -rf "$dir/venv"
  fi
  exec 9>&-
}

if [ "$PACK_ONLY" = 1 ]; then pack_environment; echo "$ENV_ARCHIVE"; exit 0; fi

# Python on the driver and executors.
ARCHIVES=()
if [ "$LOCAL" = 1 ]; then
  add_conf spark.pyspark.python "${PYSPARK_PYTHON:-$PY}"
elif [ -n "${LAKEBOOST_SUBMIT_PYTHON:-}" ] || [ "${LAKEBOOST_PACK_ENV:-1}" = 0 ]; then
  add_conf spark.pyspark.python "${LAKEBOOST_SUBMIT_PYTHON:-$PY}"
  [ "$DEPLOY_MODE" = cluster ] || add_conf spark.pyspark.driver.python "${PYSPARK_DRIVER_PYTHON:-$PY}"
elif ! has_conf spark.pyspark.python; then
  pack_environment
  ARCHIVES+=("$ENV_ARCHIVE#environment")
  add_conf spark.pyspark.python ./environment/bin/python
  [ "$DEPLOY_MODE" = cluster ] || add_conf spark.pyspark.driver.python "${PYSPARK_DRIVER_PYTHON:-$PY}"
fi

# The job's config (the driver imports lakeboost from the zip, so its default conf/ is not the repo's).
if [ "$(cd "$(dirname "$JOB")" && pwd)" = "$ROOT/jobs" ]; then
  case " ${JOB_ARGS[*]:-} " in
    *" --conf-dir "*|*" --conf-dir="*) ;;
    *) if [ "$DEPLOY_MODE" = cluster ]; then JOB_ARGS+=(--conf-dir lakeboost_conf/conf)
       else JOB_ARGS+=(--conf-dir "${LAKEBOOST_CONF_DIR:-$ROOT/conf}"); fi ;;
  esac
elif [ "$DEPLOY_MODE" != cluster ]; then
  export LAKEBOOST_CONF_DIR="${LAKEBOOST_CONF_DIR:-$ROOT/conf}"
fi

# The package as a zip for --py-files, the config directory as an archive; one directory per
# run (named by this process, which becomes spark-submit) so concurrent submissions keep theirs.
mkdir -p "$ROOT/build/submit"
for old in "$ROOT"/build/submit/[0-9]*; do
  if [ -e "$old" ] && ! kill -0 "$(basename "$old")" 2>/dev/null; then rm -rf "$old"; fi
done
BUILD="$ROOT/build/submit/$$"
rm -rf "$BUILD" && mkdir -p "$BUILD"
(cd "$ROOT/lib" && "$PY" -m zipfile -c "$BUILD/lakeboost.zip" lakeboost)
# The applications' packages travel with it: conf/ finds examples/ at ../examples (application.python_path).
(cd "$ROOT" && "$PY" -m zipfile -c "$BUILD/conf.zip" conf examples)
JARS="$("$PY" -m lakeboost.spark.prefetch --separator ,)"
PY_FILES=("$BUILD/lakeboost.zip") ARCHIVES=("$BUILD/conf.zip#lakeboost_conf" "${ARCHIVES[@]+"${ARCHIVES[@]}"}")
[ -z "$USER_PY_FILES" ] || PY_FILES+=("$USER_PY_FILES")
[ -z "$USER_ARCHIVES" ] || ARCHIVES+=("$USER_ARCHIVES")
[ -z "$USER_JARS" ] || JARS="${JARS:+$JARS,}$USER_JARS"

CMD=("$VENV/bin/spark-submit" "${SUBMIT_ARGS[@]}"
     --py-files "$(join "${PY_FILES[@]}")"
     --archives "$(join "${ARCHIVES[@]}")"
     ${JARS:+--jars "$JARS"}
     "$JOB" "${JOB_ARGS[@]+"${JOB_ARGS[@]}"}")
echo "spark-submit.sh: $(shell_words "${CMD[@]}" | redacted)" >&2
export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
exec "${CMD[@]}"
