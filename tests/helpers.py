"""Small builders shared by tests: configs rooted in tmp_path, and DataFrame comparison."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lakeboost.config.model import LakeboostConfig


def make_config(tmp_path: Path, sources: dict[str, Any] | None = None, **sections: Any) -> LakeboostConfig:
    """A validated config whose lakehouse and landing live under tmp_path."""
    raw: dict[str, Any] = {
        "storage": {"root": str(tmp_path / "lake"), "landing": str(tmp_path / "landing")},
        "sources": sources or {},
        **sections,
    }
    return LakeboostConfig.model_validate(raw)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
