"""Declarative integration of sources that disagree in keys and time.

An integration (silver.integrations) is a base table plus as-of joins (the attributes of an
entity valid at the row's time), lookups (plain joins on keys) and derived SQL columns. The
same function integrates the batch table, each live micro-batch and the training set's
point-in-time attributes: one code path, so what a model is trained on is what it scores.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeboost import __version__
from lakeboost.config.integration import AsOfJoin, IntegrationConfig, Lookup
from lakeboost.errors import IntegrationError
from lakeboost.faults import kill_during_write
from lakeboost.io.catalog import TableCatalog, WriteResult
from lakeboost.io.hashing import with_content_hash
from lakeboost.refine.asof import asof_join
from lakeboost.spark.rows import first_row

log = logging.getLogger(__name__)
_JOINED = "__joined_"


def with_asof(rows: DataFrame, right: DataFrame, join: AsOfJoin, *, time: str) -> DataFrame:
    """`rows` with `join.columns` (renamed) of the right row valid at each row's `time`.

    Every row is kept exactly once; with no valid right row its new columns are NULL.
    """
    keyed = right.select(*[F.col(r).alias(left) for left, r in join.keys.items()],
                         *[F.col(c) for c in dict.fromkeys([*join.columns, join.time]) if c not in join.keys.values()])
    joined = asof_join(rows, keyed, on=list(join.keys), left_time=time, right_time=join.time,
                       right_columns=list(join.columns), strict=join.strict, max_age_seconds=join.max_age_seconds,
                       prefix=_JOINED)
    renamed = [F.col(f"{_JOINED}{c}").alias(out) for c, out in join.columns.items()]
    if join.time_as:
        renamed.append(F.col(f"{_JOINED}asof_time").alias(join.time_as))
    return joined.select(*[F.col(c) for c in rows.columns], *renamed)


def with_lookup(rows: DataFrame, right: DataFrame, lookup: Lookup) -> DataFrame:
    """`rows` with `lookup.columns` (renamed) of the right row with the same key (NULL when none)."""
    keyed = right.select(*[F.col(r).alias(f"{_JOINED}{left}") for left, r in lookup.keys.items()],
                         *[F.col(c).alias(out) for c, out in lookup.columns.items()])
    matches = [F.col(left).eqNullSafe(F.col(f"{_JOINED}{left}")) for left in lookup.keys]
    condition = matches[0]
    for more in matches[1:]:
        condition = condition & more
    return rows.join(F.broadcast(keyed), condition, how="left").drop(*[f"{_JOINED}{left}" for left in lookup.keys])


def integrate(base: DataFrame, spec: IntegrationConfig, tables: Mapping[str, DataFrame]) -> DataFrame:
    """One integrated row per base row: as-of joins, lookups, derived columns, drop, select.

    `tables` maps each logical table the spec names to its DataFrame (pinned versions, or the
    live history). Without `columns`, the output keeps the base's business columns (those
    not starting with `_`) and everything joined or derived.
    """
    out = base
    for join in spec.as_of:
        assert spec.time is not None  # IntegrationConfig requires it with as_of joins
        out = with_asof(out, tables[join.table], join, time=spec.time)
    for lookup in spec.lookups:
        out = with_lookup(out, tables[lookup.table], lookup)
    for name, expr in spec.derived.items():
        out = out.withColumn(name, F.expr(expr))
    out = out.drop(*spec.drop)
    columns = spec.columns or tuple(c for c in out.columns if not c.startswith("_"))
    return out.select(*columns)


def output_table(name: str, spec: IntegrationConfig) -> str:
    return spec.table or f"silver.{name}"


def check_lookup_keys(tables: Mapping[str, DataFrame], spec: IntegrationConfig, *, name: str) -> None:
    """A lookup table with a repeated key would multiply base rows: refuse it, naming the key."""
    for lookup in spec.lookups:
        repeated = first_row(
            tables[lookup.table].groupBy(*lookup.keys.values()).count().filter(F.col("count") > 1)
            .agg(F.count(F.lit(1)).alias("keys"), F.first(F.to_json(F.struct(*lookup.keys.values()))).alias("example")))
        if repeated["keys"]:
            raise IntegrationError(
                f"silver.integrations.{name}.lookups: {lookup.table} has {repeated['keys']} repeated key(s) on "
                f"{list(lookup.keys.values())} (e.g. {repeated['example']}); a lookup must match at most one row. "
                "Use an as-of join for versioned rows, or fix the table's key")


BUILT_FROM = "lakeboost.integration.builtFrom"  # table property: the marker of a build that changed no row


def spec_digest(spec: IntegrationConfig) -> str:
    """The digest of an integration's spec as parsed (shorthands expanded, defaults filled; the
    order of `derived` kept, since each may use the ones before it)."""
    return hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:16]


def integration_marker(name: str, spec: IntegrationConfig, versions: Mapping[str, int | None]) -> str:
    """What an integrated table's commit records of how it was built: the integration, a digest
    of its spec, the version of every input it read and lakeboost's (a new release may join
    differently)."""
    return json.dumps({"lakeboost_integration": name, "spec": spec_digest(spec), "inputs": dict(versions),
                       "lakeboost": __version__}, sort_keys=True)


def last_marker(catalog: TableCatalog, target: str, latest: str | None) -> dict | None:
    """The marker of the table's latest build: the latest commit's (`latest`, its userMetadata),
    else the newest one in its history (an OPTIMIZE since commits none). None: no build of
    lakeboost's recorded one."""
    marker = _as_marker(latest)
    if marker is None:
        found = (catalog.history(target).select("version", "userMetadata")
                 .filter(F.col("userMetadata").contains('"lakeboost_integration"'))
                 .orderBy(F.col("version").desc()).limit(1).collect())
        marker = _as_marker(found[0]["userMetadata"]) if found else None
    return marker


def _as_marker(text: str | None) -> dict | None:
    try:
        marker = json.loads(text) if text else None
    except ValueError:  # someone else's userMetadata
        return None
    return marker if isinstance(marker, dict) and "lakeboost_integration" in marker else None


def integrate_step(catalog: TableCatalog, name: str, spec: IntegrationConfig, *,
                   full_rebuild: bool = False) -> WriteResult:
    """Rebuild one integrated table from silver (its inputs pinned to their latest versions); MERGE
    writes only rows that changed.

    Nothing is computed when the table's latest commit was this integration's, from the same
    spec and the same input versions (`integration_marker`, kept in the commit's userMetadata):
    the rebuild reads every input in full, which on a scheduled run with no new data was the
    refine step's whole cost (and grows with the data). A build whose MERGE changed no row
    makes no commit (Delta commits no empty append either), so it records its marker in a table
    property's commit (`BUILT_FROM`, metadata only).

    A table whose last build ran another spec (or recorded none) is overwritten, not merged: a
    MERGE would keep a column the spec no longer has, and rows of base keys no longer there.
    """
    target = output_table(name, spec)
    versions = {table: catalog.version(table) for table in spec.inputs()}
    marker = integration_marker(name, spec, versions)
    recorded = catalog.last_user_metadata(target)
    if not full_rebuild and recorded == marker:
        log.info("%s: inputs %s and spec unchanged since its last build; nothing to do", target, versions)
        return WriteResult(target, None)
    respec = False
    if catalog.exists(target):
        built = last_marker(catalog, target, recorded)
        respec = built is None or (built.get("lakeboost_integration"), built.get("spec")) != (name, spec_digest(spec))
        if respec:
            log.info("%s: the spec of silver.integrations.%s changed since its last build (digest %s -> %s); "
                     "rebuilding it fully", target, name, (built or {}).get("spec", "not recorded"), spec_digest(spec))
    tables = {table: catalog.read(table, version=version) for table, version in versions.items()}
    check_lookup_keys(tables, spec, name=name)
    integrated = integrate(tables[spec.base], spec, tables)
    with kill_during_write("integrate.during_merge", catalog.path(target)):
        result = catalog.upsert(integrated.transform(with_content_hash, columns=integrated.columns), target,
                                keys=spec.key, order_by=(), user_metadata=marker, overwrite=respec)
    if result.version is None and recorded != marker:  # no commit: the latest is still `recorded`
        catalog.set_properties(target, {BUILT_FROM: marker}, user_metadata=marker)
    return result
