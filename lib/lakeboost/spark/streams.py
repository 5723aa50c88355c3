"""Run a streaming query to completion and bring errors from foreachBatch back as themselves."""

from __future__ import annotations

import re

from pyspark.sql.streaming import StreamingQuery

from lakeboost import errors
from lakeboost.spark.diagnostics import root_cause

_RAISED = re.compile(r"lakeboost\.errors\.(\w+): (.+?)(?:\n| SQLSTATE:|$)")


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
