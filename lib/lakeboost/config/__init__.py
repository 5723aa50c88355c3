"""Typed configuration: `load_config` builds a frozen `LakeboostConfig`."""

from lakeboost.config.loader import load_config
from lakeboost.config.model import (
    DemoConfig,
    FileSourceConfig,
    JdbcSourceConfig,
    LakeboostConfig,
    SparkConfig,
    StorageConfig,
)

__all__ = [
    "DemoConfig",
    "FileSourceConfig",
    "JdbcSourceConfig",
    "LakeboostConfig",
    "SparkConfig",
    "StorageConfig",
    "load_config",
]
