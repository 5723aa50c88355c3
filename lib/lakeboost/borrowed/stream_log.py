"""Spark's own record of a file stream's micro-batches, read from the query's checkpoint.

Structured Streaming keeps, in the checkpoint, an offset log (`offsets/<batch>`: a version line,
the batch's metadata, then one offset per source; a file source's offset is `{"logOffset": n}`)
and the file source's log (`sources/0/<n>`, compacted every few entries into `<n>.compact`: a
version line, then one JSON entry per file with its `path`, `timestamp` and `batchId`). Neither
format is a public API; both are version `v1` in the Spark versions of `TESTED`. What it buys:
the files of a micro-batch (and their modification times) before any of its rows is read, so
bronze ingest parses a batch once. Without it (`batch_files` returns None: a Spark outside
`TESTED`, a log not in that shape, `LAKEBOOST_BORROWED=off`) the caller finds the files from
the batch's rows, one extra aggregate over them.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable

from lakeboost.borrowed import PathChoice, TestedRange, announce, outside, switched_off

log = logging.getLogger(__name__)

TESTED = (TestedRange("pyspark", (4, 2), (4, 3)),)
NEED = "a file stream's micro-batch files from its checkpoint"


def choose(versions: dict[str, str] | None = None) -> PathChoice:
    """The path this need takes; `versions` stands in for the installed ones (tests)."""
    return _announced(_choice(tuple(sorted((versions or {}).items()))))


@functools.lru_cache(maxsize=4)
def _announced(choice: PathChoice) -> PathChoice:
    return announce(NEED, choice)


@functools.lru_cache(maxsize=4)
def _choice(versions: tuple[tuple[str, str], ...]) -> PathChoice:
    if switched_off():
        return PathChoice(False, "LAKEBOOST_BORROWED=off")
    why = outside(TESTED, dict(versions) or None)
    return PathChoice(False, why) if why else PathChoice(True, f"{' and '.join(str(t) for t in TESTED)} tested")


def batch_files(read_text: Callable[[str], str], exists: Callable[[str], bool], checkpoint: str,
                batch_id: int) -> dict[str, int] | None:
    """The files of micro-batch `batch_id` of the single file source of the query checkpointed at
    `checkpoint`: path (as the reader's `_metadata.file_path` spells it) -> modification time
    (ms). None where the logs are not as expected (another source kind, a log Spark purged, a
    Spark outside `TESTED`). `read_text` and `exists` reach the checkpoint's file system (the
    caller's: lakeboost.spark.fs, a layer above this one)."""
    if not choose().borrowed:
        return None
    root = checkpoint.rstrip("/")
    try:
        end = _log_offset(read_text, root, batch_id)
        start = _log_offset(read_text, root, batch_id - 1) if batch_id > 0 else -1
        files: dict[str, int] = {}
        for entry_batch in range(start + 1, end + 1):
            base = f"{root}/sources/0/{entry_batch}"
            lines = read_text(base if exists(base) else f"{base}.compact").splitlines()
            if not lines or lines[0] != "v1":
                raise ValueError(f"{base}: not a v1 file-source log")
            for line in lines[1:]:
                entry = json.loads(line)
                if entry["batchId"] == entry_batch:
                    files[reader_path(entry["path"])] = int(entry["timestamp"])
    except Exception as exc:  # noqa: BLE001 - anything unexpected: the caller's way, from the rows, is always right
        log.info("files of batch %d not read from %s (%s): found from its rows", batch_id, root, exc)
        return None
    return files


def _log_offset(read_text: Callable[[str], str], root: str, batch: int) -> int:
    lines = read_text(f"{root}/offsets/{batch}").splitlines()
    if len(lines) != 3 or lines[0] != "v1":
        raise ValueError(f"offsets/{batch}: not one source's v1 offset")
    return int(json.loads(lines[2])["logOffset"])


def reader_path(logged: str) -> str:
    """A path as the file-source log keeps it (`file:///x`) as the reader's `_metadata.file_path`
    has it (`file:/x`)."""
    return "file:/" + logged[len("file:///"):] if logged.startswith("file:///") else logged
