"""Table I/O by logical name."""

from lakeboost.io.catalog import TableCatalog, WriteResult

__all__ = ["TableCatalog", "WriteResult"]
