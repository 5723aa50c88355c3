"""Run a streaming query to completion and bring errors from foreachBatch back as themselves."""

from __future__ import annotations

import json
import re
from functools import cached_property

from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from lakeboost import errors
from lakeboost.spark.diagnostics import root_cause
from lakeboost.spark.fs import read_text

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


def await_query(query: StreamingQuery, what: str, timeout_seconds: float | None = None) -> None:
    """Wait for the query (until it stops, or `timeout_seconds`, then stop it).

    Raises:
        LakeboostError (the same subclass a foreachBatch function raised, with its message),
        or LakeboostError naming `what` for any other failure.
    """
    try:
        # pyspark's stub says int, but it accepts float seconds (it converts to int milliseconds).
        query.awaitTermination(timeout_seconds)  # type: ignore[arg-type]
    except Exception as exc:  # StreamingQueryException wraps the batch function's error as text
        raise translate(exc, what) from None
    finally:
        if query.isActive:
            query.stop()
    failure = query.exception()
    if failure is not None:
        raise translate(failure, what)


def translate(exc: BaseException, what: str) -> errors.LakeboostError:
    text = str(exc)
    match = _RAISED.search(text)
    if match:
        cls = getattr(errors, match.group(1), None)
        if isinstance(cls, type) and issubclass(cls, errors.LakeboostError):
            return cls(match.group(2).strip())
    return errors.LakeboostError(f"{what} failed: {root_cause(exc)}")
