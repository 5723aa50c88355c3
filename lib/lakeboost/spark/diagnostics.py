"""Turn Spark/JVM exceptions into one line a user can act on."""

from __future__ import annotations

from lakeboost.borrowed.jvm import java_causes


def root_cause(exc: BaseException) -> str:
    """The innermost Java exception's message (one line), else the Python message's first line."""
    message = next((cause.message for cause in reversed(java_causes(exc)) if cause.message), None)
    text = message or str(exc)
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    return first[:500]
