"""Custom features: `DataFrame -> DataFrame` functions registered by name, used from config.

    from lakeboost.features.registry import feature

    @feature("night_owl")
    def night_owl(df: DataFrame) -> DataFrame:
        return df.withColumn("night_owl", (F.hour("placed_at") < 6).cast("int"))

Functions live in the application's package (a module named in `application.modules`), which
registers them when the config loads; the framework registers none.

A custom feature must keep every row and the event key, and may use only the event's own
columns and the features computed before it (it runs after the declarative ones). Config
entries are a name, or `{name: ..., args: {...}}`: the args are passed as keyword arguments,
so a function can take its column names from config instead of naming a dataset's columns.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from pyspark.sql import DataFrame

from lakeboost.errors import ConfigError

FeatureFn = Callable[..., DataFrame]  # (df, **args) -> df
_REGISTRY: dict[str, FeatureFn] = {}


def feature(name: str) -> Callable[[FeatureFn], FeatureFn]:
    """Decorator registering `fn` under `name`."""

    def register(fn: FeatureFn) -> FeatureFn:
        _REGISTRY[name] = fn
        return fn

    return register


def resolve(name: str) -> FeatureFn:
    """A registered function by name, or `module.path:function` imported on demand."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"custom feature {name!r} cannot be imported: {exc}") from None
    raise ConfigError(f"custom feature {name!r} is not registered; registered: {sorted(_REGISTRY)} "
                      "(or use 'module.path:function')")


def resolution_problem(name: str) -> str | None:
    """Why `name` does not resolve to a feature function, or None (config validation)."""
    try:
        resolve(name)
    except ConfigError as exc:
        return str(exc)
    return None
