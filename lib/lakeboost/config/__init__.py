"""Typed configuration: `load_config` builds a frozen `LakeboostConfig`."""

from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.loader import load_config
from lakeboost.config.model import (
    FileSourceConfig,
    JdbcSourceConfig,
    KafkaSourceConfig,
    LakeboostConfig,
    SparkConfig,
    StorageConfig,
)

__all__ = [
    "DatasetConfig",
    "FileSourceConfig",
    "JdbcSourceConfig",
    "KafkaSourceConfig",
    "LakeboostConfig",
    "SparkConfig",
    "StorageConfig",
    "load_config",
]
