"""Run a streaming query to completion and bring errors from foreachBatch back as themselves."""

from __future__ import annotations

import dataclasses
import json
import re
import time
import uuid
from collections.abc import Callable
from functools import cached_property
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from lakeboost import errors
from lakeboost.progress import Progress
from lakeboost.spark.diagnostics import root_cause
from lakeboost.spark.fs import delete_path, path_exists, read_text, write_text
from lakeboost.spark.kind import is_connect

_RAISED = re.compile(r"lakeboost\.errors\.(\w+): (.+?)(?:\n| SQLSTATE:|$)")


class BatchTxn:
    """`txnAppId`/`txnVersion` pairs for the Delta writes of one streaming query's foreachBatch.

    The app id ends with the query's id, read from its checkpoint: the same checkpoint after a
    kill gives the same ids (Delta skips a batch committed before), while a new checkpoint (a
    full rebuild, or one deleted to recover) starts a new sequence. With the bare batch id it
    would restart at 0 under an app id Delta had already seen up to N, and Delta would silently
    skip every write up to batch N.
    """

    def __init__(self, spark: SparkSession, checkpoint: str) -> None:
        self.spark, self.checkpoint = spark, checkpoint

    @cached_property
    def query_id(self) -> str:
        # Spark writes {"id": ...} to <checkpoint>/metadata when the query first starts.
        return str(json.loads(read_text(self.spark, f"{self.checkpoint.rstrip('/')}/metadata"))["id"])

    def __call__(self, app: str, batch_id: int) -> tuple[str, int]:
        return f"{app}.{self.query_id}", batch_id


BatchFn = Callable[[DataFrame, int], None]


class BatchLedger:
    """Brings the counters a foreachBatch function keeps (a dataclass: a StepSummary, the refine's
    or the stream's counts) back to the caller on Spark Connect.

    On a classic session foreachBatch runs in this process and the function's counters are the
    caller's own. On Spark Connect it runs in a Python process of the server, on a copy of them
    taken when the query started: the wrapped function writes that copy (JSON) after every batch
    to `<checkpoint>/lakeboost_ledger/<run>.json`, in the checkpoint's storage (which both
    sides reach), and `settle()` copies the last one into the caller's counters after the query.
    """

    def __init__(self, spark: SparkSession, checkpoint: str, counters: Any) -> None:
        self.connect = is_connect(spark)
        self.spark, self.counters = spark, counters
        self.path = f"{checkpoint.rstrip('/')}/lakeboost_ledger/{uuid.uuid4().hex}.json"

    def wrap(self, fn: BatchFn) -> BatchFn:
        if not self.connect:
            return fn
        counters, path = self.counters, self.path

        def recorded(batch: DataFrame, batch_id: int) -> None:
            fn(batch, batch_id)  # on the server: `counters` is the server's copy, which fn updated
            write_text(batch.sparkSession, path, json.dumps(dataclasses.asdict(counters), default=str))

        return recorded

    def settle(self) -> None:
        """Copy the server's counters into the caller's (Spark Connect; nothing to do on classic)."""
        if not self.connect or not path_exists(self.spark, self.path):
            return
        recorded = json.loads(read_text(self.spark, self.path))
        for item in dataclasses.fields(self.counters):
            if item.name in recorded:
                value = recorded[item.name]
                setattr(self.counters, item.name,
                        tuple(value) if isinstance(getattr(self.counters, item.name), tuple) else value)
        delete_path(self.spark, self.path)


def await_query(query: StreamingQuery, what: str, timeout_seconds: float | None = None) -> None:
    """Wait for the query (until it stops, or `timeout_seconds`, then stop it).

    Raises:
        LakeboostError (the same subclass a foreachBatch function raised, with its message),
        or LakeboostError naming `what` for any other failure.
    """
    try:
        _await_reporting(query, what, timeout_seconds)
    except Exception as exc:  # StreamingQueryException wraps the batch function's error as text
        raise translate(exc, what) from None
    finally:
        if query.isActive:
            query.stop()
    failure = query.exception()
    if failure is not None:
        raise translate(failure, what)


# How often a waiting driver looks for finished micro-batches (it returns at once when the query stops).
POLL_SECONDS = 1.0


def _await_reporting(query: StreamingQuery, what: str, timeout_seconds: float | None) -> None:
    """Wait as `awaitTermination(timeout_seconds)` does, reporting each finished micro-batch
    (`lakeboost.progress`: its rows and time) from the query's progress, read on the driver."""
    deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
    seen = -1
    with Progress(query.name or what, "micro-batch") as progress:
        while True:
            # pyspark refuses a timeout of 0: at least a millisecond.
            wait = POLL_SECONDS if deadline is None else max(0.001, min(POLL_SECONDS, deadline - time.monotonic()))
            # pyspark's stub says int, but it accepts float seconds (it converts to int milliseconds).
            stopped = query.awaitTermination(wait)  # type: ignore[arg-type]
            seen = _report_batches(query, progress, seen)
            if stopped or (deadline is not None and time.monotonic() >= deadline):
                return


def _report_batches(query: StreamingQuery, progress: Progress, seen: int) -> int:
    """Report the micro-batches after `seen` that read rows; the last batch id reported."""
    for event in query.recentProgress:
        batch, rows = int(event["batchId"]), int(event["numInputRows"] or 0)
        if batch > seen and rows:
            took = (event["durationMs"] or {}).get("triggerExecution", 0) / 1000
            progress.done("", f"batch id {batch}: {rows} rows, {took:.1f}s")
            seen = batch
    return seen


def translate(exc: BaseException, what: str) -> errors.LakeboostError:
    text = str(exc)
    match = _RAISED.search(text)
    if match:
        cls = getattr(errors, match.group(1), None)
        if isinstance(cls, type) and issubclass(cls, errors.LakeboostError):
            return cls(match.group(2).strip())
    return errors.LakeboostError(f"{what} failed: {root_cause(exc)}")
