"""Applications plug into the framework: their modules, config sections, feature functions.

An application's config names the modules it brings (`application.modules`); the loader
imports them before it validates the config, so they can register steps
(`lakeboost.steps.step`), feature functions (`feature`, below) and their own config sections
(`register_section`), which are validated by the application's model. The registries live
here, below the config, so the loader checks what the config names against them without
importing the packages that use them.

A custom feature is a `DataFrame -> DataFrame` function registered by name and used from config:

    from lakeboost.plugins import feature

    @feature("night_owl")
    def night_owl(df: DataFrame) -> DataFrame:
        return df.withColumn("night_owl", (F.hour("placed_at") < 6).cast("int"))

It must keep every row and the event key, and may use only the event's own columns and the
features computed before it (it runs after the declarative ones). Config entries are a name, or
`{name: ..., args: {...}}`: the args are passed as keyword arguments, so a function can take its
column names from config instead of naming a dataset's columns. The framework registers none.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from lakeboost.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

FeatureFn = Callable[..., "DataFrame"]  # (df, **args) -> df
_SECTIONS: dict[str, type[BaseModel]] = {}
_FEATURES: dict[str, FeatureFn] = {}


def register_section(name: str, model: type[BaseModel]) -> None:
    """Let `name:` appear at the top level of the config, validated by `model`."""
    _SECTIONS[name] = model


def registered_sections() -> dict[str, type[BaseModel]]:
    return dict(_SECTIONS)


def feature(name: str) -> Callable[[FeatureFn], FeatureFn]:
    """Decorator registering `fn` as the custom feature `name`."""

    def register(fn: FeatureFn) -> FeatureFn:
        _FEATURES[name] = fn
        return fn

    return register


def resolve_feature(name: str) -> FeatureFn:
    """A registered feature function by name, or `module.path:function` imported on demand."""
    if name in _FEATURES:
        return _FEATURES[name]
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"custom feature {name!r} cannot be imported: {exc}") from None
    raise ConfigError(f"custom feature {name!r} is not registered; registered: {sorted(_FEATURES)} "
                      "(or use 'module.path:function')")


def feature_problem(name: str) -> str | None:
    """Why `name` does not resolve to a feature function, or None (config validation)."""
    try:
        resolve_feature(name)
    except ConfigError as exc:
        return str(exc)
    return None


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
