"""Spark's memory sizes as numbers (the training pre-flight and the cost meter read them)."""

from __future__ import annotations

import re


def parse_memory(text: str) -> int:
    """Spark memory strings ('4g', '512m', '1024k', bare bytes) to bytes."""
    match = re.fullmatch(r"(\d+)([kmgt]?)b?", text.strip().lower())
    if not match:
        raise ValueError(f"unrecognised memory size {text!r}")
    return int(match.group(1)) * 1024 ** " kmgt".index(match.group(2) or " ")
