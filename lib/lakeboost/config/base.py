"""Shared pieces of the config models: the frozen base class and Spark type-name checks."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

# Spark SQL type names a declared schema may use (decimal(p,s) handled by the pattern).
_SIMPLE_TYPES = {
    "string", "int", "integer", "bigint", "long", "smallint", "tinyint", "double", "float",
    "boolean", "date", "timestamp", "timestamp_ntz", "binary",
}
_DECIMAL = re.compile(r"^decimal\(\s*\d+\s*,\s*\d+\s*\)$")


class Frozen(BaseModel):
    """Base: immutable, unknown keys rejected (a typo in YAML is an error, not a no-op)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def check_schema(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    for column, type_name in value.items():
        normalised = type_name.strip().lower()
        if normalised not in _SIMPLE_TYPES and not _DECIMAL.match(normalised):
            raise ValueError(
                f"column {column!r}: unknown Spark SQL type {type_name!r}; "
                f"expected one of {sorted(_SIMPLE_TYPES)} or decimal(p,s)"
            )
    return value


