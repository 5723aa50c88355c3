"""Schema drift between incoming source data and its bronze table.

A new column is fine (bronze evolves its schema); a changed type is not, because every
reader downstream was written against the old type. `on_type_change: cast` keeps the table's
type and sends values that do not cast to quarantine instead.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql.types import StructType

from lakeboost.errors import SchemaDriftError


def effective_types(
    *, source: str, table: str, incoming: Mapping[str, str], existing: StructType | None,
    on_type_change: str,
) -> dict[str, str]:
    """Column -> SQL type to write: the incoming type, or the table's on `cast`.

    Raises:
        SchemaDriftError: a column's type changed and `on_type_change` is `fail`.
    """
    if existing is None:
        return dict(incoming)
    table_types = {f.name: f.dataType.simpleString() for f in existing.fields}
    resolved = {}
    for column, type_name in incoming.items():
        old = table_types.get(column)
        if old is None or _same(old, type_name):
            resolved[column] = type_name
        elif on_type_change == "cast":
            resolved[column] = old
        else:
            raise SchemaDriftError(
                f"source {source!r}: column {column!r} is {old} in {table} but {type_name} in "
                f"the new data; set sources.{source}.on_type_change: cast to keep {old} "
                "(values that do not cast are quarantined), or migrate the table first"
            )
    return resolved


_ALIASES = {"integer": "int", "long": "bigint", "short": "smallint", "byte": "tinyint",
            "real": "float"}


def _same(left: str, right: str) -> bool:
    def norm(t: str) -> str:
        t = t.strip().lower().replace(" ", "")
        return _ALIASES.get(t, t)

    return norm(left) == norm(right)


def struct_types(schema: StructType) -> dict[str, str]:
    return {f.name: f.dataType.simpleString() for f in schema.fields}
