"""Names and values spelt into Spark SQL text.

Lakeboost builds some expressions as SQL text on purpose: one `F.expr` of a whole aggregation is
one JVM call, where the same expression from Python Columns is several calls per column.
"""

from __future__ import annotations


def quoted_name(column: str) -> str:
    """A column name as a SQL identifier: backticks around it, a backtick inside doubled."""
    return "`" + column.replace("`", "``") + "`"


def string_literal(text: str) -> str:
    """A SQL string literal of `text` (backslash and quote escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
