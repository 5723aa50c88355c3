"""Table maintenance: OPTIMIZE (with Z-ORDER), VACUUM that never silently breaks time travel, and
the retention of raw personal data in bronze (`gold.maintenance.bronze_pii_retention`)."""

from __future__ import annotations

import functools
import logging
import re
from datetime import timedelta

from pyspark.sql import DataFrame

from lakeboost.config.features import MaintenanceConfig
from lakeboost.config.silver import SilverConfig, SilverTableConfig
from lakeboost.errors import ConfigError
from lakeboost.io.catalog import TableCatalog
from lakeboost.logs import StepSummary
from lakeboost.spark.rows import first_row
from lakeboost.spark.sql_text import quoted_name

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
    # VACUUM lists the table's directories in a job of this many tasks; Spark's default
    # (10,000) costs ~35 s of empty tasks even for a small table. The cluster's cores suffice.
    settings = {LISTING_PARALLELISM: str(_parallelism(catalog))}
    if retention_hours < SAFE_RETENTION_HOURS:
        log.warning("UNSAFE VACUUM of %s with %dh retention (< %dh): time travel and running streams "
                    "older than that will break", name, retention_hours, SAFE_RETENTION_HOURS)
        settings[RETENTION_CHECK] = "false"
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        if catalog.connect:  # Delta's SQL: its Python DeltaTable needs a JVM in this process
            spark.sql(f"VACUUM {catalog.sql_ref(name)} RETAIN {int(retention_hours)} HOURS")
        else:
            catalog.delta_table(name).vacuum(retention_hours)
    finally:
        for key, before in previous.items():
            if before is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, before)


def _parallelism(catalog: TableCatalog) -> int:
    """The session's default parallelism: the SparkContext's, or on Spark Connect (no SparkContext
    here) the server's `spark.default.parallelism`, else its local cores' worth (2)."""
    if not catalog.connect:
        return max(catalog.spark.sparkContext.defaultParallelism, 1)
    return max(int(catalog.spark.conf.get("spark.default.parallelism", "2") or "2"), 1)


def optimize(catalog: TableCatalog, name: str, zorder: tuple[str, ...] = ()) -> dict[str, int]:
    """Compact small files (and cluster by `zorder` columns); returns Delta's metrics.

    OPTIMIZE rewrites files without changing the data: one that conflicts with a writer's
    commit (a MERGE that rewrote files it was compacting) runs again on the new table.

    Raises:
        ConcurrentWriteError: still conflicting after the catalog's attempts.
    """
    def attempt() -> DataFrame:
        if catalog.connect:  # Delta's SQL: its Python DeltaTable needs a JVM in this process
            by = f" ZORDER BY ({', '.join(quoted_name(c) for c in zorder)})" if zorder else ""
            return catalog.spark.sql(f"OPTIMIZE {catalog.sql_ref(name)}{by}")
        builder = catalog.delta_table(name).optimize()
        return builder.executeZOrderBy(*zorder) if zorder else builder.executeCompaction()

    operation = f"OPTIMIZE ZORDER BY ({', '.join(zorder)})" if zorder else "OPTIMIZE"
    metrics = catalog.run_retrying(name, operation, attempt)
    row = first_row(metrics.select("metrics.numFilesAdded", "metrics.numFilesRemoved"))
    return {"files_added": int(row[0] or 0), "files_removed": int(row[1] or 0)}


PURGED = "[purged: bronze personal-data retention]"


def personal_source_columns(table: SilverTableConfig, bronze_columns: list[str]) -> list[str]:
    """The bronze columns a silver table's `pii` rules read: the column itself, or every bronze
    column its expression names (a card number cleaned by `regexp_replace(card_number, ...)`)."""
    found: list[str] = []
    for name in dict.fromkeys([*table.pii.hash, *table.pii.mask, *table.pii.drop]):
        spec = table.columns.get(name)
        text = spec.expr if spec is not None and spec.expr else name
        found += [c for c in bronze_columns if re.search(rf"(?<![\w`]){re.escape(c)}(?![\w`])|`{re.escape(c)}`", text)]
    return list(dict.fromkeys(found))


def purge_bronze_pii(catalog: TableCatalog, silver: SilverConfig, retention: timedelta) -> dict[str, int]:
    """Blank raw personal data ingested more than `retention` ago: the personal source columns of
    each bronze table a silver table with `pii` rules reads (NULL), and the raw record of
    bronze.quarantine rows (a marker; the row, its source and reason stay). Idempotent: rows
    already blank match nothing. Returns the rows blanked per table."""
    cutoff = f"current_timestamp() - INTERVAL {int(retention.total_seconds())} SECONDS"
    targets: dict[str, list[str]] = {}
    for table in silver.tables.values():
        if catalog.exists(table.source):
            columns = personal_source_columns(table, catalog.read(table.source).columns)
            targets[table.source] = list(dict.fromkeys([*targets.get(table.source, []), *columns]))
    statements = {
        name: (f"UPDATE {catalog.sql_ref(name)} SET " + ", ".join(f"{quoted_name(c)} = NULL" for c in columns)
               + f" WHERE _ingested_at < {cutoff} AND ("
               + " OR ".join(f"{quoted_name(c)} IS NOT NULL" for c in columns) + ")")
        for name, columns in targets.items() if columns
    }
    quarantine = catalog.tables.bronze_quarantine
    if catalog.exists(quarantine):
        statements[quarantine] = (f"UPDATE {catalog.sql_ref(quarantine)} SET raw_record = '{PURGED}' "
                                  f"WHERE ingested_at < {cutoff} AND raw_record <> '{PURGED}'")
    blanked = {}
    for name, statement in statements.items():
        # An UPDATE re-run after a conflict blanks the same rows: retried (Delta conflicts).
        result = catalog.run_retrying(name, "UPDATE (personal-data retention)",
                                      functools.partial(catalog.spark.sql, statement))
        blanked[name] = int(first_row(result)[0]) if result.columns else 0
        log.info("bronze personal-data retention %s: %d rows of %s blanked", retention, blanked[name], name)
    return blanked


def maintain(catalog: TableCatalog, config: MaintenanceConfig, *, allow_unsafe: bool = False,
             silver: SilverConfig | None = None) -> StepSummary:
    """Blank expired personal data in bronze (when `bronze_pii_retention` is set), then OPTIMIZE
    and VACUUM the configured tables (the blanked rows' old files go with VACUUM)."""
    summary = StepSummary("maintain")
    if config.bronze_pii_retention is not None and silver is not None:
        summary.details["pii_rows_blanked"] = purge_bronze_pii(catalog, silver, config.bronze_pii_retention)
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
