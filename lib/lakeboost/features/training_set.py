"""Point-in-time training sets: labels joined to features known strictly before each example.

The example time is the event time; the label's *availability* time (when a presence label's
row was reported, or a value label's `available_at`) decides whether it is known at the
cutoff. A value not known at the cutoff leaves its example out; with presence labels,
examples younger than `label_maturity` at the cutoff are left out, because most of their
labels have not arrived yet and would be counted as negatives.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import cast

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeboost.config.dataset import DatasetConfig, PresenceLabel
from lakeboost.config.features import FeatureSetConfig, TrainingSetConfig
from lakeboost.errors import TrainingError
from lakeboost.features.audit import audit_leakage
from lakeboost.features.compute import FEATURES_AS_OF
from lakeboost.features.outcomes import KNOWN_AS_OF, KNOWN_AT_OR_BEFORE
from lakeboost.features.spec import feature_table_columns
from lakeboost.io.catalog import TableCatalog
from lakeboost.refine.integrate import with_asof
from lakeboost.spark.rows import first_row

log = logging.getLogger(__name__)
LABEL_AVAILABLE_AT = "_label_available_at"


@dataclass(frozen=True)
class TrainingSet:
    """The examples and where they came from (enough to rebuild them with time travel)."""

    df: DataFrame
    versions: dict[str, int]
    cutoff: dt.datetime
    feature_columns: tuple[str, ...]
    categorical: tuple[str, ...]
    dataset: DatasetConfig
    config_digest: str = ""  # of the TrainingSetConfig and dataset it was built with
    leakage_audit: dict | None = None  # features.audit.AuditResult.as_dict() of the build
    categorical_encoding: str = "frequency"  # gold.training_set.categorical_encoding

    @property
    def event_time(self) -> str:
        return self.dataset.event_time

    @property
    def key(self) -> tuple[str, ...]:
        return self.dataset.key

    @property
    def label(self) -> str:
        return self.dataset.label_column

    def lineage(self) -> dict:
        return {"versions": self.versions, "cutoff": self.cutoff.isoformat(),
                "feature_columns": list(self.feature_columns), "categorical": list(self.categorical),
                "config_digest": self.config_digest, "dataset": self.dataset.model_dump(mode="json"),
                "leakage_audit": self.leakage_audit, "categorical_encoding": self.categorical_encoding}


def config_digest(cfg: TrainingSetConfig, dataset: DatasetConfig) -> str:
    text = cfg.model_dump_json() + dataset.model_dump_json()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def excluded_columns(cfg: TrainingSetConfig, dataset: DatasetConfig) -> set[str]:
    """Columns of the examples that are never features (beside `_` bookkeeping columns).

    Late-arriving columns are never features of their own event (the outcome itself). A key
    column names the event and is left out too, unless `categorical` names it (a station id).
    """
    return {*cfg.exclude, *[k for k in dataset.key if k not in cfg.categorical], dataset.event_time,
            dataset.date_column, dataset.label_column, *dataset.late_columns(),
            *[a.time_as for a in cfg.as_of if a.time_as]}


def declared_feature_columns(cfg: TrainingSetConfig, features: FeatureSetConfig,
                             dataset: DatasetConfig) -> tuple[str, ...]:
    """The training set's feature columns as the config declares them (`lakeboost config show`):
    the feature table's, then the as-of joins', less `excluded_columns`; custom functions'
    columns are not known before they run."""
    table = feature_table_columns(features, dataset)
    as_of = [alias for join in cfg.as_of for alias in join.columns.values()]
    excluded = excluded_columns(cfg, dataset)
    return tuple(c for c in dict.fromkeys([*table, *as_of]) if c not in excluded and not c.startswith("_"))


def label_table(dataset: DatasetConfig) -> str:
    """The table the labels are read from: the presence table, or the events for value labels."""
    return dataset.label.table if isinstance(dataset.label, PresenceLabel) else dataset.events


def input_tables(cfg: TrainingSetConfig, dataset: DatasetConfig) -> list[str]:
    return list(dict.fromkeys([cfg.features, label_table(dataset), *[a.table for a in cfg.as_of]]))


def known_labels(labels: DataFrame, dataset: DatasetConfig, *, as_of: dt.datetime) -> DataFrame:
    """The labels known at `as_of`: the dataset's key columns, the label column and when it
    became known (`_label_available_at`).

    Presence: one row per key with at least one label row available by then (label 1).
    Value: the expression's value for every event whose value was available and not NULL.
    """
    label = dataset.label
    if isinstance(label, PresenceLabel):
        return (
            labels.filter(F.col(label.available_at) <= F.lit(as_of))
            .groupBy(*[F.col(c).alias(k) for c, k in zip(dataset.label_key, dataset.key, strict=True)])
            .agg(F.min(label.available_at).alias(LABEL_AVAILABLE_AT))
            .withColumn(label.column, F.lit(1))
        )
    value = F.expr(label.expr)
    valued = labels.select(*dataset.key, value.alias(label.column),
                           F.expr(label.available_at).alias(LABEL_AVAILABLE_AT))
    if valued.schema[label.column].dataType.typeName() == "boolean":  # a threshold: a 0/1 label
        valued = valued.withColumn(label.column, F.col(label.column).cast("int"))
    return valued.filter(F.col(label.column).isNotNull() & (F.col(LABEL_AVAILABLE_AT) <= F.lit(as_of)))


def with_labels(examples: DataFrame, known: DataFrame, dataset: DatasetConfig) -> DataFrame:
    """Presence: every example, label 0 without a known label row. Value: only the examples
    whose value is known (an unknown value is never a negative)."""
    if isinstance(dataset.label, PresenceLabel):
        return (examples.join(known, on=list(dataset.key), how="left")
                .withColumn(dataset.label_column, F.coalesce(F.col(dataset.label_column), F.lit(0))))
    return examples.join(known, on=list(dataset.key), how="inner")


def is_binary_label(df: DataFrame, dataset: DatasetConfig) -> bool:
    """Presence labels, and integral value labels whose values are all 0 or 1 (a class index
    0..k-1 of a multiclass label is integral too: one aggregation tells them apart)."""
    if isinstance(dataset.label, PresenceLabel):
        return True
    label = dataset.label_column
    if df.schema[label].dataType.typeName() not in ("integer", "long", "short", "byte", "boolean"):
        return False
    low, high = first_row(df.agg(F.min(F.col(label).cast("int")), F.max(F.col(label).cast("int"))))
    return low is None or (low >= 0 and high <= 1)


def build_training_set(catalog: TableCatalog, cfg: TrainingSetConfig, dataset: DatasetConfig, *,
                       versions: dict[str, int] | None = None, cutoff: dt.datetime | None = None) -> TrainingSet:
    """Assemble, audit and return the training set at pinned table versions.

    The set's DataFrame comes back persisted: the audit reads it four times and the caller at
    least once more (each read would otherwise redo the as-of joins). `df.unpersist()` it when done.

    Args:
        versions: table -> Delta version to read (replay); default: each table's latest.
        cutoff: what "now" is for labels; default: config, else the latest event.
    Raises:
        LeakageError: a feature was observed at/after its label time, or predicts it alone.
    """
    # version() is None only for a missing table, which catalog.read() below rejects before any
    # version is used; the TrainingSet is built only after every input table has been read.
    versions = versions or cast(dict[str, int], {t: catalog.version(t) for t in input_tables(cfg, dataset)})
    event_time = dataset.event_time
    features = catalog.read(cfg.features, version=versions[cfg.features])
    labels = catalog.read(label_table(dataset), version=versions[label_table(dataset)])
    if cutoff is None and cfg.cutoff:
        cutoff = dt.datetime.fromisoformat(cfg.cutoff)
    first_event = None
    warm_up = cfg.resolved_warm_up()
    if cutoff is None or warm_up:  # one pass for both ends
        first_event, last_event = first_row(features.agg(F.min(event_time), F.max(event_time)))
        cutoff = cutoff or last_event
    mature_before = cutoff - (cfg.label_maturity or dt.timedelta(0))
    features = features.filter(F.col(event_time) <= F.lit(mature_before))
    if warm_up and first_event is not None:
        warmed_from = first_event + warm_up
        if warmed_from > mature_before:
            raise TrainingError(
                f"training set: no example is both warmed up and mature. {cfg.features} starts {first_event}; "
                f"gold.training_set.warm_up {cfg.warm_up} (what its longest window needs) leaves examples from "
                f"{warmed_from}, and label_maturity {cfg.label_maturity} ends them at {mature_before} "
                f"(cutoff {cutoff}). Load more history, shorten the windows, or set warm_up to a shorter "
                "duration (0s keeps every example, with the skew of still-filling windows)")
        features = features.filter(F.col(event_time) >= F.lit(warmed_from))
    examples = with_labels(features, known_labels(labels, dataset, as_of=cutoff), dataset)
    examples = with_asof_features(catalog, examples, cfg, dataset, versions=versions) \
        .persist(StorageLevel.MEMORY_AND_DISK)
    label = dataset.label_column
    excluded = excluded_columns(cfg, dataset)
    feature_columns = tuple(c for c in examples.columns if c not in excluded and not c.startswith("_"))
    categorical = tuple(c for c in cfg.categorical if c in feature_columns)
    time_columns = [FEATURES_AS_OF, *[c for c in examples.columns if c.startswith(KNOWN_AS_OF)],
                    *[a.time_as for a in cfg.as_of if a.time_as]]
    binary = is_binary_label(examples, dataset)
    try:
        audit = audit_leakage(examples, label=label, event_time=event_time, time_columns=time_columns,
                              feature_columns=[c for c in feature_columns if c not in categorical] if binary else [],
                              categorical=categorical if binary else (), max_auc=cfg.max_single_feature_auc,
                              skipped="" if binary else "the label is not binary",
                              at_or_before=[c for c in examples.columns if c.startswith(KNOWN_AT_OR_BEFORE)])
    except Exception:
        examples.unpersist()  # a rejected set is not returned: nobody else could release it
        raise
    log.info("training set at cutoff %s from versions %s", cutoff, json.dumps(versions, sort_keys=True))
    return TrainingSet(examples, versions, cutoff, feature_columns, categorical, dataset,
                       config_digest(cfg, dataset), audit.as_dict(), cfg.categorical_encoding)


def stored_training_set(catalog: TableCatalog, cfg: TrainingSetConfig, dataset: DatasetConfig) -> TrainingSet | None:
    """gold.training_set as the features step wrote (and audited) it, when it is what
    build_training_set would build now: the same data in every input table (the same versions,
    or a restore of them) and the same configuration (an explicit cutoff is part of it;
    otherwise the cutoff follows from the versions). None when there is none or it is stale."""
    stored = catalog.tables.training_set
    if not catalog.exists(stored):
        return None
    commit = first_row(catalog.history(stored, 1).select("version", "userMetadata"))
    lineage = json.loads(commit["userMetadata"] or "{}")
    # Compared by data, not by commit count: a source rolled back with RESTORE to the version the
    # set was built from leaves it current.
    built_from = lineage.get("versions") or {}
    tables = input_tables(cfg, dataset)
    digest = config_digest(cfg, dataset)
    if lineage.get("config_digest") != digest:
        log.info("%s: the spec it was built from (gold.training_set and dataset) changed (digest %s -> %s); "
                 "it is rebuilt in full", stored, lineage.get("config_digest"), digest)
        return None
    if set(built_from) != set(tables):
        return None
    for table in tables:
        latest, built = catalog.version(table), int(built_from[table])
        if latest == built:
            continue  # the usual case: no commit since, no restore chain to read
        if latest is None or catalog.content_version(table, latest) != catalog.content_version(table, built):
            return None
    return TrainingSet(catalog.read(stored, version=int(commit["version"])), lineage["versions"],
                       dt.datetime.fromisoformat(lineage["cutoff"]), tuple(lineage["feature_columns"]),
                       tuple(lineage["categorical"]), dataset, lineage["config_digest"], lineage.get("leakage_audit"),
                       lineage.get("categorical_encoding", "frequency"))


def current_training_set(catalog: TableCatalog, cfg: TrainingSetConfig, dataset: DatasetConfig) -> TrainingSet:
    """The stored training set when it is current (no second build, no second audit), else a
    fresh build."""
    stored = stored_training_set(catalog, cfg, dataset)
    if stored is not None:
        log.info("training set: reusing %s (inputs unchanged since it was built)", catalog.tables.training_set)
        return stored
    log.info("training set: %s is missing or stale; building it", catalog.tables.training_set)
    return build_training_set(catalog, cfg, dataset)


def with_asof_features(catalog: TableCatalog, rows: DataFrame, cfg: TrainingSetConfig, dataset: DatasetConfig, *,
                       versions: dict[str, int] | None = None) -> DataFrame:
    """The configured as-of attributes at each row's event time (the integration's as-of join).

    Training and scoring both call this: one code path, so no training/serving skew.
    """
    for join in cfg.as_of:
        table = catalog.read(join.table, version=(versions or {}).get(join.table))
        rows = with_asof(rows, table, join, time=dataset.event_time)
    return rows


def write_training_set(catalog: TableCatalog, training: TrainingSet) -> int | None:
    """Persist the examples with their lineage in the commit (`userMetadata`)."""
    result = catalog.write(training.df, catalog.tables.training_set, mode="overwrite",
                           extra_options={"overwriteSchema": "true",
                                          "userMetadata": json.dumps(training.lineage(), sort_keys=True)})
    return result.version
