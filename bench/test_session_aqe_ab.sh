#!/usr/bin/env bash
# A: main's conftest (AQE on), B: this worktree's (AQE off); alternating pytest runs of the same files.
FILES="tests/features/test_windows.py tests/features/test_build.py tests/train/test_splits_and_layout.py tests/monitor/test_estimate.py"
for kind in "$@"; do
  if [ $kind = A ]; then wt=${BASE_WT:?a worktree of the baseline}; else wt=${OURS_WT:?a worktree with the change}; fi
  s=$(date +%s); l=$(cut -d' ' -f1 /proc/loadavg)
  (cd $wt && PYTHONPATH=$wt/lib:$wt:$wt/examples timeout 900 /work/main/.venv/bin/python -m pytest -q $FILES -p no:cacheprovider 2>&1 | tail -1)
  echo "$kind wall $(( $(date +%s) - s )) s load1 start $l end $(cut -d' ' -f1 /proc/loadavg)"
done
