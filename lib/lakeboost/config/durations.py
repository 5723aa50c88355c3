"""Durations in config: one type, parsed once when the config loads.

`Duration` is a `datetime.timedelta`; every duration key of the config (feature windows,
label maturity, warm-up, look-backs, as-of ages, JDBC timeouts, retention, stream and
file-source trigger intervals) has this type, so code downstream does timedelta arithmetic
and never parses text. YAML writes `90s`, `15m`, `1h`, `30d` or `2w`; Spark's interval
spelling (`5 seconds`, `10 minutes`, `1 hour`) is accepted too, for configs written before
the two were one.

A duration keeps the text it was written as (`spelling`): a feature window's spelling names
its columns (`recent_rentals_mean_24h`), and the config's JSON form (the spec digests of
feature tables and integrations, the config recorded with every model) is the spelling, as
it always was, so an unchanged YAML digests as before. Two spellings of one length compare
equal.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import core_schema

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SHORT = re.compile(r"^(\d+)([smhdw])$")
_SPARK_UNITS = {"second": "s", "minute": "m", "hour": "h", "day": "d", "week": "w"}
_SPARK = re.compile(r"^(\d+)\s+(second|minute|hour|day|week)s?$", re.IGNORECASE)
ACCEPTED = "a whole number and a unit: 90s, 15m, 1h, 30d, 2w (or Spark's 5 seconds, 10 minutes, 1 hour, 2 days)"
_PATTERN = r"^\d+([smhdw]|\s+([Ss]econd|[Mm]inute|[Hh]our|[Dd]ay|[Ww]eek)s?)$"


class Duration(timedelta):
    """A timedelta that remembers how the config spelled it (`str()` gives the spelling)."""

    spelling: str

    def __new__(cls, seconds: int, spelling: str | None = None) -> Duration:
        self = super().__new__(cls, seconds=seconds)
        self.spelling = spelling or _canonical(seconds)
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # pickled to executors with the config
        return Duration, (int(self.total_seconds()), self.spelling)

    def __str__(self) -> str:
        return self.spelling

    def __repr__(self) -> str:
        return f"Duration({self.spelling!r})"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            parse_duration,
            # JSON (the recorded config, spec digests): the spelling. Python: the Duration itself.
            serialization=core_schema.plain_serializer_function_ser_schema(str, when_used="json"),
        )

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler) -> dict:
        return {"type": "string", "pattern": _PATTERN, "description": f"A duration: {ACCEPTED}.",
                "examples": ["90s", "15m", "1h", "30d"]}


def parse_duration(value: object) -> Duration:
    """`30d` (or `30 days`) -> Duration of 30 days. Raises ValueError naming the accepted forms."""
    if isinstance(value, Duration):
        return value
    if isinstance(value, timedelta):
        return Duration(int(value.total_seconds()))
    text = value.strip() if isinstance(value, str) else None
    short = _SHORT.match(text) if text is not None else None
    if short:
        return Duration(int(short.group(1)) * _UNIT_SECONDS[short.group(2)], text)
    spark = _SPARK.match(text) if text is not None else None
    if spark:
        unit = _SPARK_UNITS[spark.group(2).lower()]
        return Duration(int(spark.group(1)) * _UNIT_SECONDS[unit], text)
    raise ValueError(f"duration {value!r} must be {ACCEPTED}")


def spark_interval(duration: timedelta) -> str:
    """The interval text Spark's triggers take (`processingTime="5 seconds"`)."""
    return f"{int(duration.total_seconds())} seconds"


def _canonical(seconds: int) -> str:
    """The short spelling in the largest unit up to days that divides the length (never weeks:
    `7d` names a feature column as the configs always have)."""
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"
