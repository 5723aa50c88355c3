"""Session settings for a block of work, put back as they were after it.

A micro-batch of a few rows or an incremental build of a few entities runs better without
adaptive execution and with few shuffle partitions; the rest of the session must not inherit
that. One implementation serves both (score.stream, features.build): each key is restored to
its value before, or unset when it was unset, on a classic session and over Spark Connect alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from pyspark.sql import SparkSession


def apply_conf(settings: Mapping[str, str], *sessions: SparkSession) -> Callable[[], None]:
    """Set `settings` in each of `sessions` (each session once); return what puts them back."""
    before: list[tuple[SparkSession, dict[str, str | None]]] = []
    for session in dict.fromkeys(sessions):
        before.append((session, {key: session.conf.get(key, None) for key in settings}))
        for key, value in settings.items():
            session.conf.set(key, value)

    def restore() -> None:
        for session, values in before:
            for key, value in values.items():
                if value is None:
                    session.conf.unset(key)
                else:
                    session.conf.set(key, value)
    return restore


@contextmanager
def session_conf(settings: Mapping[str, str], *sessions: SparkSession) -> Iterator[None]:
    """`settings` in `sessions` for the block (see `apply_conf`)."""
    restore = apply_conf(settings, *sessions)
    try:
        yield
    finally:
        restore()
