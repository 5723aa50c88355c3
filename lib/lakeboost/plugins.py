"""Applications plug into the framework: their modules, config sections and Python path.

An application's config names the modules it brings (`application.modules`); the loader
imports them before it validates the config, so they can register steps
(`lakeboost.steps.step`), feature functions (`lakeboost.features.registry.feature`) and their
own config sections (`register_section`), which are validated by the application's model.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel

from lakeboost.errors import ConfigError

_SECTIONS: dict[str, type[BaseModel]] = {}


def register_section(name: str, model: type[BaseModel]) -> None:
    """Let `name:` appear at the top level of the config, validated by `model`."""
    _SECTIONS[name] = model


def registered_sections() -> dict[str, type[BaseModel]]:
    return dict(_SECTIONS)


def load_application(python_path: Iterable[str], modules: Iterable[str], *, conf_dir: Path,
                     where: str = "application") -> None:
    """Put the application's paths on sys.path (relative to `conf_dir`) and import its modules.

    Raises:
        ConfigError: a path does not exist or a module does not import (naming which).
    """
    for entry in python_path:
        path = (conf_dir / entry).resolve() if not Path(entry).is_absolute() else Path(entry)
        if not path.is_dir():
            raise ConfigError(f"{where}: application.python_path: {entry!r} resolves to {path}, which is not a "
                              "directory (paths are relative to the config directory)")
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"{where}: application.modules: cannot import {module!r}: {exc}") from None
