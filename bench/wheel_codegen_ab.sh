#!/usr/bin/env bash
# The installed wheel's `lakeboost run pipeline --to score` (tests/test_wheel.py's run, its overrides) with the
# shipped config's code generation (A) and with the suite's job settings, no generated code (B), alternating,
# each in a fresh project from `lakeboost init`. VENV: a virtualenv with the wheel[spark] installed (the
# wheel test's, under its pytest basetemp: clean-venv0/venv). JVMs take the suite's JAVA_TOOL_OPTIONS.
# Usage: bench/wheel_codegen_ab.sh VENV [ROUNDS] [ORDER]   (ORDER: "A B" or "B A")
set -u
JTO="-XX:+IgnoreUnrecognizedVMOptions -XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=512m -XX:-UseCodeCacheFlushing -XX:+UseParallelGC -XX:+UnlockDiagnosticVMOptions -XX:-BytecodeVerificationRemote"
VENV=$1; ROUNDS=${2:-1}
BASE='spark.conf={spark.sql.shuffle.partitions: 2, spark.default.parallelism: 2, spark.ui.enabled: false, spark.databricks.delta.snapshotPartitions: 1'
for r in $(seq $ROUNDS); do
for kind in ${3:-A B}; do
  d=/tmp/wheel-ab/run-$kind-$r; rm -rf $d; mkdir -p $d/elsewhere
  if [ $kind = A ]; then conf="$BASE}"; else conf="$BASE, spark.sql.codegen.wholeStage: false, spark.sql.codegen.factoryMode: NO_CODEGEN}"; fi
  (cd $d && env -u PYTHONPATH JAVA_TOOL_OPTIONS="$JTO" PATH=$VENV/bin:$PATH SPARK_LOCAL_IP=127.0.0.1 LAKEBOOST_PII_KEY=e2e-test-key-0123456789abcdef lakeboost init project >/dev/null 2>&1)
  s=$(date +%s.%N); l1=$(cut -d' ' -f1 /proc/loadavg)
  (cd $d/elsewhere && env -u PYTHONPATH JAVA_TOOL_OPTIONS="$JTO" PATH=$VENV/bin:$PATH SPARK_LOCAL_IP=127.0.0.1 LAKEBOOST_PII_KEY=e2e-test-key-0123456789abcdef \
    lakeboost run pipeline --conf-dir $d/project/conf --to score --set demo.rows=8000 --set demo.days=120 --set training.model.n_estimators=40 \
    --set 'training.model.params={max_depth: 4, learning_rate: 0.2}' --set "$conf" > $d/out.log 2>&1); rc=$?
  e=$(date +%s.%N)
  echo "$kind round $r rc=$rc wall $(echo "$e - $s" | bc | cut -c1-6) s load1 start $l1 end $(cut -d' ' -f1 /proc/loadavg)"
done; done
