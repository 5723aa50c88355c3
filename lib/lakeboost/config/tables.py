"""The framework's own tables: the ones lakeboost writes for itself, whatever the application.

They are logical names like every other table (`<layer>.<table>`, resolved by the catalog),
configured in one place, `storage.tables`, with defaults, and reached through the catalog
(`catalog.tables.training_set`), so no module holds one as a constant. The tables a section
configures for its own output stay with it: `scoring.predictions_table`,
`scoring.stream.predictions_table` and `.events_table`, `monitor.table` and `.alerts_table`.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from lakeboost.config.base import Frozen

# What the catalog accepts (lakeboost.io.catalog): `<layer>.<table>`, snake_case.
_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z_][a-z0-9_]*$")


class FrameworkTables(Frozen):
    """The tables lakeboost itself writes (`storage.tables`). Rename one to move it: a second
    pipeline in the same lakehouse, say, or a house naming rule."""

    bronze_quarantine: str = Field("bronze.quarantine", description=(
        "Source rows ingest could not parse or type, with the raw record and the reason (ingest)."))
    silver_quarantine: str = Field("silver.quarantine", description=(
        "Rows failing a `quarantine` expectation of a silver table's contract (refine; also live "
        "events unless scoring.stream.quarantine_table names another)."))
    data_quality: str = Field("silver.data_quality", description=(
        "Each refine run's pass/fail counts per expectation (refine; monitor reads its trend)."))
    feature_state: str = Field("gold.feature_state", description=(
        "Input versions and spec digest each feature table was built from (incremental feature builds)."))
    training_set: str = Field("gold.training_set", description=(
        "The point-in-time training set with its lineage (features; train, monitor's reference)."))

    @field_validator("*")
    @classmethod
    def _logical_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} is not a logical table name: expected '<layer>.<table>' in snake_case, "
                             "e.g. 'gold.training_set'")
        return value

    @model_validator(mode="after")
    def _distinct(self) -> FrameworkTables:
        seen: dict[str, str] = {}
        for key, table in self.by_key().items():
            if table in seen:
                raise ValueError(f"{key} and {seen[table]} both name {table!r}: each framework table needs its own")
            seen[table] = key
        return self

    def by_key(self) -> dict[str, str]:
        """storage.tables key -> logical table name."""
        return {key: getattr(self, key) for key in type(self).model_fields}
