"""Concurrent writers of one Delta table: which errors are conflicts, which writes retry them, and
how a writer finds the commit it made among other writers' commits.

Delta commits optimistically: a writer that finds a conflicting commit since its snapshot fails
with one of Delta's concurrent-modification exceptions and commits nothing. A write whose
result does not depend on what it read (an append, a txn append, a latest-wins MERGE, an
insert of missing keys) is simply run again; one that replaces what it read (an overwrite,
replaceWhere) is refused with ConcurrentWriteError, since running it again could undo the
other writer's rows.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pyspark.errors import AnalysisException
from pyspark.sql import SparkSession

from lakeboost.borrowed.jvm import java_causes
from lakeboost.errors import ConcurrentWriteError
from lakeboost.spark.kind import is_connect

log = logging.getLogger(__name__)
T = TypeVar("T")

# Delta's concurrent-modification exceptions (io.delta.exceptions.* in the JVM, and the classes of
# delta-spark's Python package, delta.exceptions, that PySpark's captured exceptions become).
CONFLICTS = frozenset({
    "ConcurrentAppendException", "ConcurrentDeleteReadException", "ConcurrentDeleteDeleteException",
    "MetadataChangedException", "ProtocolChangedException", "ConcurrentTransactionException",
    "ConcurrentWriteException", "DeltaConcurrentModificationException",
})
# Delta's error classes of those conflicts (delta-error-classes.json; a subclass such as
# `.WITHOUT_HINT` may follow). Over Spark Connect the client gets no Java class and no Delta Python
# class, only the error class the server sends (`getCondition()`), and Delta 4.4's messages of the
# first three no longer name the exception.
ERROR_CLASSES = {
    "DELTA_CONCURRENT_APPEND": "ConcurrentAppendException",
    "DELTA_CONCURRENT_DELETE_READ": "ConcurrentDeleteReadException",
    "DELTA_CONCURRENT_DELETE_DELETE": "ConcurrentDeleteDeleteException",
    "DELTA_CONCURRENT_TRANSACTION": "ConcurrentTransactionException",
    "DELTA_CONCURRENT_WRITE": "ConcurrentWriteException",
    "DELTA_METADATA_CHANGED": "MetadataChangedException",
    "DELTA_PROTOCOL_CHANGED": "ProtocolChangedException",
}
# Conflicts that no write runs again.
NOT_RETRIED = {
    "ConcurrentTransactionException": (
        "another writer committed under the same transaction app id (two runs of one streaming query on "
        "one checkpoint?), and running it again could skip this batch as one already written"),
}
_JAVA_CLASS = re.compile(r"^\s*([\w$.]+?)(?::|$)", re.MULTILINE)
_WINNER = re.compile(r"concurrent ((?:[A-Z]+ )*[A-Z]+)\b(?: [a-z]|$)")
_WINNER_JSON = re.compile(r'"operation"\s*:\s*"([^"]+)"')
_WINNER_VERSION = re.compile(r"committed at version (\d+)|\"version\"\s*:\s*(\d+)")
_TAG = "lakeboost_commit"
_TEXT = "lakeboost_user_metadata"
USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"


@dataclass(frozen=True)
class ConflictPolicy:
    """How often an idempotent write is run again after a conflict, and how long it waits
    between runs (exponential, jittered so that two retrying writers drift apart)."""

    attempts: int = 5
    base_delay_s: float = 0.2
    max_delay_s: float = 5.0

    def delay(self, attempt: int) -> float:
        return min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)


def conflict_name(error: BaseException) -> str | None:
    """The name of the Delta conflict `error` is or wraps (its Python class, the Java exception
    behind it and that one's causes, or the captured Java stack trace's first line); None when
    it is not a conflict."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for cls in type(current).__mro__:
            if cls.__name__ in CONFLICTS:
                return cls.__name__
        condition = _condition(current)
        if condition in ERROR_CLASSES:
            return ERROR_CLASSES[condition]
        # The Java exception behind it and its causes, each through its superclasses.
        found = next((name for cause in java_causes(current) for name in cause.class_names if name in CONFLICTS), None)
        if found:
            return found
        trace = getattr(current, "_stackTrace", None) or ""
        first = _JAVA_CLASS.match(str(trace))
        if first and first.group(1).rsplit(".", 1)[-1] in CONFLICTS:
            return first.group(1).rsplit(".", 1)[-1]
        current = current.__cause__ or current.__context__
    return None


def _condition(error: BaseException) -> str | None:
    """The error class of a PySpark error (classic or Connect), without its subclass."""
    get = getattr(error, "getCondition", None)
    try:
        condition = get() if callable(get) else None
    except Exception:  # a captured exception whose JVM side is gone answers nothing useful
        return None
    return condition.split(".", 1)[0] if isinstance(condition, str) else None


def winning_commit(error: BaseException) -> str:
    """What Delta says won the race: 'MERGE at version 4', as far as its message tells."""
    text = str(error)
    operation = _WINNER.search(text) or _WINNER_JSON.search(text)
    version = _WINNER_VERSION.search(text)
    what = f"concurrent {operation.group(1)}" if operation else "concurrent commit"
    return f"{what} at version {version.group(1) or version.group(2)}" if version else what


def run_retrying(attempt: Callable[[], T], *, table: str, operation: str, retry: bool,
                 policy: ConflictPolicy, refused_because: str = "") -> T:
    """`attempt()`, run again after a Delta conflict while `retry` and attempts are left.

    Raises:
        ConcurrentWriteError: a conflict that is not retried (`refused_because` says why), or
            still a conflict after `policy.attempts` runs.
    """
    for number in itertools.count(1):
        try:
            return attempt()
        except ConcurrentWriteError:
            raise  # already decided by a write inside `attempt`: refused, or out of attempts
        except Exception as error:
            name = conflict_name(error)
            if name is None:
                raise
            winner = winning_commit(error)
            if not retry or name in NOT_RETRIED:
                raise ConcurrentWriteError(
                    f"{table}: {operation} conflicted with a {winner} ({name}) and was not retried: "
                    f"{NOT_RETRIED.get(name, refused_because)}. Nothing was written. Re-run the step that writes "
                    f"{table} once the other writer has finished, or schedule the two apart") from error
            if number >= policy.attempts:
                raise ConcurrentWriteError(
                    f"{table}: {operation} still conflicted with concurrent commits after {number} attempts "
                    f"(the last with a {winner}, {name}). Nothing was written. The write is idempotent: re-run "
                    f"the step that writes {table}, or keep other writers off it while it runs") from error
            delay = policy.delay(number)
            log.warning("%s: %s conflicted with a %s (%s); retry %d of %d in %.2f s", table, operation,
                        winner, name, number, policy.attempts - 1, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")  # itertools.count never ends


# -- the commit a writer made -------------------------------------------------------------
# Each write puts a token of its own in its commit's userMetadata, with the caller's text, and
# finds its commit by it among the commits after the version it started from: with other
# writers on the table, "the latest commit" may be theirs. The caller's text stays readable:
# a JSON object (integration markers, training-set lineage) gets the token as one more member
# at its end, so whoever parses the raw userMetadata finds every key it wrote; other text goes
# into a small JSON object. `caller_text` gives back exactly the caller's text; a commit
# written before tokens existed holds the caller's text alone.
_APPENDED = re.compile(r', "' + _TAG + r'": "([0-9a-f]{32})"\}$')


def new_token() -> str:
    return uuid.uuid4().hex


def tagged(token: str, text: str | None) -> str:
    """The userMetadata of a commit tagged with `token`, holding the caller's `text`."""
    if text is not None and _json_object(text) and text.endswith("}"):
        return f'{text[:-1]}, "{_TAG}": "{token}"}}'
    return json.dumps({_TAG: token} if text is None else {_TAG: token, _TEXT: text}, sort_keys=True)


def _json_object(text: str) -> dict | None:
    try:
        body = json.loads(text) if text.startswith("{") else None
    except ValueError:
        return None
    return body if isinstance(body, dict) and body and _TAG not in body else None


def _untag(user_metadata: str | None) -> tuple[str | None, str | None]:
    """(token, caller's text) of a commit's userMetadata; no token: an untagged commit."""
    if not user_metadata or not user_metadata.startswith("{"):
        return None, user_metadata
    appended = _APPENDED.search(user_metadata)
    if appended:
        return appended.group(1), user_metadata[:appended.start()] + "}"
    try:
        body = json.loads(user_metadata)
    except ValueError:
        return None, user_metadata
    if isinstance(body, dict) and _TAG in body and set(body) <= {_TAG, _TEXT}:
        return str(body[_TAG]), body.get(_TEXT)
    return None, user_metadata


def caller_text(user_metadata: str | None) -> str | None:
    """The caller's text of a commit's userMetadata, exactly as given (None: there was none)."""
    return _untag(user_metadata)[1]


def token_of(user_metadata: str | None) -> str | None:
    return _untag(user_metadata)[0]


def session_for_commit(spark: SparkSession, user_metadata: str) -> SparkSession:
    """A session of its own for one commit whose userMetadata is `user_metadata`, with `spark`'s
    settings. DeltaTable's MERGE and SQL commands take no writer options, only the session conf,
    which concurrent writers sharing a session would share too: one's text would land on
    another's commit."""
    if is_connect(spark):
        # A server-side clone: the settings, temporary views and functions of `spark`, apart from
        # it from here on. The caller releases it (`release_commit_session`).
        clone = spark.cloneSession()  # type: ignore[attr-defined]
        clone.conf.set(USER_METADATA_CONF, user_metadata)
        return clone
    session = spark.newSession()
    for key, value in spark.conf.getAll.items():
        if session.conf.get(key, None) != value:
            try:
                session.conf.set(key, value)
            except AnalysisException:  # a static or core setting: the same in every session
                log.debug("setting %s not copied to the commit's session", key)
    session.conf.set(USER_METADATA_CONF, user_metadata)
    return session


def release_commit_session(session: SparkSession) -> None:
    """End a Spark Connect commit session on the server (a classic one is just dropped)."""
    if is_connect(session):
        # Not `session.stop()`: a clone lacks the attributes it reads. A clone has a gRPC channel of
        # its own, which left open keeps the interpreter from exiting.
        client = session.client  # type: ignore[attr-defined]
        try:
            client.release_session()
        finally:
            client.close()
