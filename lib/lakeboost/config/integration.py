"""Declarative integration: a base table plus as-of joins, lookups and derived SQL columns.

One definition serves batch refine (the integrated silver table), the live stream (the same
joins over each micro-batch) and the training set's point-in-time attributes, so training
and serving cannot drift apart.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from lakeboost.config.base import Frozen
from lakeboost.config.dataset import COLUMNS_INPUT, as_columns
from lakeboost.config.durations import Duration

# Joined columns in YAML: a list (the same names) or a mapping (a rename); keys also one column.
_NAMES_OR_MAPPING = list[str] | dict[str, str]
_KEYS_INPUT = str | _NAMES_OR_MAPPING


def _as_mapping(value: object) -> object:
    """`[a, b]` means the same names on both sides; a mapping is {left column: right column}."""
    value = as_columns(value)
    if isinstance(value, (list, tuple)):
        return {str(c): str(c) for c in value}
    return value


def _columns_mapping(value: object) -> object:
    """`[a, b]` keeps the names; a mapping is {right column: output name}."""
    if isinstance(value, (list, tuple)):
        return {str(c): str(c) for c in value}
    return value


class AsOfJoin(Frozen):
    """Attributes of the right row valid at the left row's time (latest at or before it).

    `strict`: only right rows strictly before the left row's time (point-in-time features: a
    value written at the example's own instant is its future). `max_age`: older right rows
    give NULLs. `time_as`: keep the matched row's time under this name (the leakage audit
    checks it is before the example's time).
    """

    table: str
    # The entity key: left column -> right column (a list: the same names). Not `on`: YAML
    # reads a bare `on` as the boolean true. Empty: one time line for every row (a city-wide
    # weather feed); give it a max_age, which also spreads the join over tasks.
    keys: dict[str, str] = Field(default_factory=dict)
    time: str  # the right table's valid-from column
    columns: dict[str, str] = Field(min_length=1)  # right column -> output name
    max_age: Duration | None = None
    strict: bool = False
    time_as: str | None = None

    _keys = field_validator("keys", mode="before", json_schema_input_type=_KEYS_INPUT)(_as_mapping)
    _columns = field_validator("columns", mode="before", json_schema_input_type=_NAMES_OR_MAPPING)(
        _columns_mapping)

    @property
    def max_age_seconds(self) -> int | None:
        return int(self.max_age.total_seconds()) if self.max_age is not None else None


class Lookup(Frozen):
    """A plain join on keys, no time (a rates table, a static reference). The `keys` must
    be a unique key of the lookup table: a lookup never multiplies rows."""

    table: str
    keys: dict[str, str] = Field(min_length=1)  # left column -> right column
    columns: dict[str, str] = Field(min_length=1)  # right column -> output name

    _keys = field_validator("keys", mode="before", json_schema_input_type=_KEYS_INPUT)(_as_mapping)
    _columns = field_validator("columns", mode="before", json_schema_input_type=_NAMES_OR_MAPPING)(
        _columns_mapping)


class IntegrationConfig(Frozen):
    """One integrated silver table: `base` rows, each exactly once, with joined attributes.

    Steps run in order: as-of joins, lookups, derived columns (SQL over everything before,
    in the order given), then `drop`. `columns` (optional) is the output schema in order.
    """

    base: str  # logical silver table, one row per key
    key: tuple[str, ...] = Field(min_length=1)  # unique key of the output (the MERGE key)
    time: str | None = None  # the base column as-of joins align on
    as_of: tuple[AsOfJoin, ...] = ()
    lookups: tuple[Lookup, ...] = ()
    derived: dict[str, str] = Field(default_factory=dict)  # output name -> SQL
    drop: tuple[str, ...] = ()
    columns: tuple[str, ...] | None = None
    table: str | None = None  # output table; default silver.<name>

    _key = field_validator("key", mode="before", json_schema_input_type=COLUMNS_INPUT)(as_columns)

    @model_validator(mode="after")
    def _time_for_asof(self) -> IntegrationConfig:
        if self.as_of and not self.time:
            raise ValueError("as_of joins need `time`: the base column they align on")
        return self

    def inputs(self) -> list[str]:
        """Every table the integration reads, base first."""
        return [self.base, *[j.table for j in self.as_of], *[lk.table for lk in self.lookups]]
