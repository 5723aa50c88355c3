"""Silver layer configuration: conformance, keys, contracts (expectations) and PII per table."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from lakeboost.config.base import Frozen, check_schema
from lakeboost.config.integration import IntegrationConfig

ExpectationAction = Literal["warn", "drop", "quarantine", "fail"]


class Expectation(Frozen):
    """A SQL boolean expression every row should satisfy, and what to do with rows that don't.

    A row whose expression is NULL counts as failing: "unknown" is not "passed".
    """

    expr: str
    action: ExpectationAction = "warn"


class PiiConfig(Frozen):
    """Personal data handling. `hash` is a keyed HMAC-SHA256 (joinable, not reversible)."""

    hash: tuple[str, ...] = ()
    # column -> how many trailing characters stay visible (card numbers: 4)
    mask: dict[str, int] = Field(default_factory=dict)
    drop: tuple[str, ...] = ()
    # Environment variable holding the HMAC key (or a Databricks secret scope/key, "scope/key").
    secret_env: str = "LAKEBOOST_PII_KEY"
    secret_scope: str | None = None


class ColumnSpec(Frozen):
    """One output column: the SQL expression over bronze columns giving its raw value, and its type.

    The cast to `type` is lakeboost's (so a value that does not cast is reported, not nulled);
    `format` is the datetime pattern for timestamp/date columns parsed from strings.
    """

    type: str
    expr: str | None = None  # default: the bronze column of the same name
    format: str | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        check_schema({"column": value})
        return value


class SilverTableConfig(Frozen):
    """How one bronze table becomes a silver table."""

    source: str  # logical bronze table
    keys: tuple[str, ...] = Field(min_length=1)
    # Latest wins: rows are ordered by these (descending) within a key, ties broken by the rest.
    order_by: tuple[str, ...] = ("_ingested_at",)
    columns: dict[str, ColumnSpec] = Field(min_length=1)
    trim_strings: bool = True
    lower: tuple[str, ...] = ()
    upper: tuple[str, ...] = ()
    expectations: dict[str, Expectation] = Field(default_factory=dict)
    pii: PiiConfig = PiiConfig()

    @model_validator(mode="after")
    def _columns_known(self) -> SilverTableConfig:
        known = set(self.columns)
        for group, names in (("keys", self.keys), ("lower", self.lower), ("upper", self.upper),
                             ("pii.hash", self.pii.hash), ("pii.drop", self.pii.drop),
                             ("pii.mask", tuple(self.pii.mask))):
            unknown = [n for n in names if n not in known]
            if unknown:
                raise ValueError(f"{group} names {unknown}, which are not in columns {sorted(known)}")
        return self


class SilverConfig(Frozen):
    tables: dict[str, SilverTableConfig] = Field(default_factory=dict)
    # Integrated tables (as-of joins, lookups, derived columns), built after the tables above.
    integrations: dict[str, IntegrationConfig] = Field(default_factory=dict)
