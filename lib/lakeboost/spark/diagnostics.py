"""Turn Spark/JVM exceptions into one line a user can act on."""

from __future__ import annotations


def root_cause(exc: BaseException) -> str:
    """The innermost Java exception's message (one line), else the Python message's first line."""
    java = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    message = None
    try:
        while java is not None:
            message = java.getMessage() or message
            java = java.getCause()
    except Exception:  # py4j may be gone while unwinding
        pass
    text = message or str(exc)
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    return first[:500]
