"""Table maintenance: OPTIMIZE (with Z-ORDER) and VACUUM that never silently breaks time travel."""

from __future__ import annotations

import logging

from lakeboost.config.features import MaintenanceConfig
from lakeboost.errors import ConfigError
from lakeboost.io.catalog import TableCatalog
from lakeboost.logs import StepSummary
from lakeboost.spark.rows import first_row

log = logging.getLogger(__name__)
SAFE_RETENTION_HOURS = 168  # Delta's default delta.deletedFileRetentionDuration: 7 days


def vacuum(catalog: TableCatalog, name: str, retention_hours: int, *, allow_unsafe: bool = False) -> None:
    """VACUUM files unreferenced for `retention_hours`.

    Raises:
        ConfigError: retention below 7 days without `allow_unsafe` (it would delete files that
            running readers, streams and time travel within the retention still need).
    """
    if retention_hours < SAFE_RETENTION_HOURS and not allow_unsafe:
        raise ConfigError(
            f"VACUUM {name} with {retention_hours}h retention refused: below Delta's safe {SAFE_RETENTION_HOURS}h, "
            "it deletes files that concurrent readers, streaming checkpoints and time travel still use. "
            "Pass --allow-unsafe-retention if you really mean it")
    spark = catalog.spark
    key = "spark.databricks.delta.retentionDurationCheck.enabled"
    previous = spark.conf.get(key, "true")
    assert previous is not None  # get() with a str default never returns None
    if retention_hours < SAFE_RETENTION_HOURS:
        log.warning("UNSAFE VACUUM of %s with %dh retention (< %dh): time travel and running streams "
                    "older than that will break", name, retention_hours, SAFE_RETENTION_HOURS)
        spark.conf.set(key, "false")
    try:
        catalog.delta_table(name).vacuum(retention_hours)
    finally:
        spark.conf.set(key, previous)


def optimize(catalog: TableCatalog, name: str, zorder: tuple[str, ...] = ()) -> dict[str, int]:
    """Compact small files (and cluster by `zorder` columns); returns Delta's metrics."""
    builder = catalog.delta_table(name).optimize()
    metrics = builder.executeZOrderBy(*zorder) if zorder else builder.executeCompaction()
    row = first_row(metrics.select("metrics.numFilesAdded", "metrics.numFilesRemoved"))
    return {"files_added": int(row[0] or 0), "files_removed": int(row[1] or 0)}


def maintain(catalog: TableCatalog, config: MaintenanceConfig, *, allow_unsafe: bool = False) -> StepSummary:
    summary = StepSummary("maintain")
    for name in config.tables:
        if not catalog.exists(name):
            log.info("maintenance: %s does not exist yet, skipped", name)
            continue
        result = optimize(catalog, name, config.zorder.get(name, ()))
        vacuum(catalog, name, config.vacuum_retention_hours, allow_unsafe=allow_unsafe)
        summary.details[name] = result
        version = catalog.version(name)
        assert version is not None  # the table exists (checked above): it has a version
        summary.versions[name] = version
    return summary
