"""Durations in config: `90s`, `15m`, `1h`, `30d`."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> int:
    """'30d' -> 2592000. Raises ValueError naming the accepted forms."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"duration {text!r} must look like 90s, 15m, 1h or 30d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def optional_duration(value: str | None) -> str | None:
    """A pydantic validator: None, or a text `duration_seconds` accepts (checked at load)."""
    if value is not None:
        duration_seconds(value)
    return value


def durations(value: tuple[str, ...]) -> tuple[str, ...]:
    """A pydantic validator: every entry is a duration (`1h`, `7d`)."""
    for text in value:
        duration_seconds(text)
    return value
