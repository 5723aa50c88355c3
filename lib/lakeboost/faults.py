"""Named failure points: a test (or `bench/bench_kills.py`) kills the process at an exact place.

`LAKEBOOST_FAULT=<point>[:<batch>]` makes `fault_point(<point>, batch)` kill its own process
with SIGKILL, the way a lost driver dies: no `finally`, no atexit, no flush. Without the
variable a fault point is one dictionary lookup. The points are named where they are called
(grep `fault_point(`); each fault test first proves from the Delta log and the checkpoint
files that the kill struck inside its window, then re-runs and compares with a clean run.

Kill *inside* a write (a MERGE, a replace) is `kill_during_write`: a watcher thread kills the
process as soon as the write's first new data file appears under the table's directory, so the
files are written and the commit is not (the state Delta's own OptimisticTransaction tests
strike). It watches a local path; that is all a test needs.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FAULT_ENV = "LAKEBOOST_FAULT"
log = logging.getLogger(__name__)


def _armed(point: str, batch: int | None) -> bool:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return False
    name, _, at = spec.partition(":")
    if name != point:
        return False
    return not at or batch is None or int(at) == batch


def _kill(point: str, batch: int | None) -> None:
    # Written straight to stderr and flushed: the test reads it to know the kill was ours.
    sys.stderr.write(f"lakeboost fault injection: killed at {point} (batch {batch})\n")
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def fault_point(point: str, batch: int | None = None) -> None:
    """Kill this process here when `LAKEBOOST_FAULT` names `point` (and `batch`, if given)."""
    if _armed(point, batch):
        _kill(point, batch)


@contextmanager
def kill_during_write(point: str, table_dir: str, batch: int | None = None) -> Iterator[None]:
    """Kill this process once the write in the block has put a new data file in `table_dir`
    (before its commit lands), when `LAKEBOOST_FAULT` names `point`."""
    if not _armed(point, batch):
        yield
        return
    root = Path(table_dir.removeprefix("file:"))
    before = _data_files(root)
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if _data_files(root) - before:
                _kill(point, batch)
            stop.wait(0.005)

    watcher = threading.Thread(target=watch, name=f"fault-{point}", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()


def _data_files(root: Path) -> set[str]:
    if not root.exists():
        return set()
    return {str(p) for p in root.rglob("*.parquet") if "_delta_log" not in p.parts}
