"""Small builders shared by tests: configs rooted in tmp_path, and DataFrame comparison."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
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


def load_script(path: Path) -> ModuleType:
    """A script that is not in a package (an application's prepare.py, say), imported by path."""
    spec = importlib.util.spec_from_file_location(f"script_{path.parent.name}_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
