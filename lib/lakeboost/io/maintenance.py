"""Table maintenance: OPTIMIZE (with Z-ORDER) and VACUUM that never silently breaks time travel."""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame

from lakeboost.config.features import MaintenanceConfig
from lakeboost.errors import ConfigError
from lakeboost.io.catalog import TableCatalog
from lakeboost.logs import StepSummary
from lakeboost.spark.rows import first_row

log = logging.getLogger(__name__)
SAFE_RETENTION_HOURS = 168  # Delta's default delta.deletedFileRetentionDuration: 7 days
RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"


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
    settings = {
        # VACUUM lists the table's directories in a job of this many tasks; Spark's default
        # (10,000) costs ~35 s of empty tasks even for a small table. The cluster's cores suffice.
        LISTING_PARALLELISM: str(max(spark.sparkContext.defaultParallelism, 1)),
    }
    if retention_hours < SAFE_RETENTION_HOURS:
        log.warning("UNSAFE VACUUM of %s with %dh retention (< %dh): time travel and running streams "
                    "older than that will break", name, retention_hours, SAFE_RETENTION_HOURS)
        settings[RETENTION_CHECK] = "false"
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        catalog.delta_table(name).vacuum(retention_hours)
    finally:
        for key, before in previous.items():
            if before is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, before)


def optimize(catalog: TableCatalog, name: str, zorder: tuple[str, ...] = ()) -> dict[str, int]:
    """Compact small files (and cluster by `zorder` columns); returns Delta's metrics.

    OPTIMIZE rewrites files without changing the data: one that conflicts with a writer's
    commit (a MERGE that rewrote files it was compacting) runs again on the new table.

    Raises:
        ConcurrentWriteError: still conflicting after the catalog's attempts.
    """
    def attempt() -> DataFrame:
        builder = catalog.delta_table(name).optimize()
        return builder.executeZOrderBy(*zorder) if zorder else builder.executeCompaction()

    operation = f"OPTIMIZE ZORDER BY ({', '.join(zorder)})" if zorder else "OPTIMIZE"
    metrics = catalog.run_retrying(name, operation, attempt)
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
