"""Point-in-time training sets: labels joined to features known strictly before each example.

The example time is the event time (the transaction); the label's *availability* time (when
the chargeback was reported) decides whether it is known at the cutoff. Examples younger than
`label_maturity` at the cutoff are left out, because most of their labels have not arrived yet
and would be counted as negatives.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import cast

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeboost.config.features import TrainingSetConfig, duration_seconds
from lakeboost.features.audit import audit_leakage
from lakeboost.features.compute import FEATURES_AS_OF
from lakeboost.io.catalog import TableCatalog
from lakeboost.refine.asof import asof_join
from lakeboost.spark.rows import first_row

log = logging.getLogger(__name__)
LABEL = "label"
TRAINING_SET = "gold.training_set"


@dataclass(frozen=True)
class TrainingSet:
    """The examples and where they came from (enough to rebuild them with time travel)."""

    df: DataFrame
    versions: dict[str, int]
    cutoff: dt.datetime
    feature_columns: tuple[str, ...]
    categorical: tuple[str, ...]
    event_time: str
    config_digest: str = ""  # of the TrainingSetConfig it was built with

    def lineage(self) -> dict:
        return {"versions": self.versions, "cutoff": self.cutoff.isoformat(),
                "feature_columns": list(self.feature_columns), "categorical": list(self.categorical),
                "config_digest": self.config_digest}


def config_digest(cfg: TrainingSetConfig) -> str:
    return hashlib.sha256(cfg.model_dump_json().encode()).hexdigest()[:16]


def input_tables(cfg: TrainingSetConfig) -> list[str]:
    return [cfg.features, cfg.labels.table, *[a.table for a in cfg.as_of]]


def build_training_set(catalog: TableCatalog, cfg: TrainingSetConfig, *, event_time: str = "event_time",
                       versions: dict[str, int] | None = None, cutoff: dt.datetime | None = None) -> TrainingSet:
    """Assemble, audit and return the training set at pinned table versions.

    Args:
        versions: table -> Delta version to read (replay); default: each table's latest.
        cutoff: what "now" is for labels; default: config, else the latest event.
    Raises:
        LeakageError: a feature was observed at/after its label time, or predicts it alone.
    """
    # version() is None only for a missing table, which catalog.read() below rejects before any
    # version is used; the TrainingSet is built only after every input table has been read.
    versions = versions or cast(dict[str, int], {t: catalog.version(t) for t in input_tables(cfg)})
    features = catalog.read(cfg.features, version=versions[cfg.features])
    labels = catalog.read(cfg.labels.table, version=versions[cfg.labels.table])
    if cutoff is None and cfg.cutoff:
        cutoff = dt.datetime.fromisoformat(cfg.cutoff)
    first_event = None
    if cutoff is None or cfg.warm_up:  # one pass for both ends
        first_event, last_event = first_row(features.agg(F.min(event_time), F.max(event_time)))
        cutoff = cutoff or last_event
    mature_before = cutoff - dt.timedelta(seconds=duration_seconds(cfg.label_maturity))
    if cfg.warm_up and first_event is not None:
        features = features.filter(
            F.col(event_time) >= F.lit(first_event + dt.timedelta(seconds=duration_seconds(cfg.warm_up))))
    known = (
        labels.filter(F.col(cfg.labels.available_at) <= F.lit(cutoff))
        .groupBy(F.col(cfg.labels.key).alias("__label_key"))
        .agg(F.min(cfg.labels.available_at).alias("label_available_at"))
    )
    examples = (
        features.filter(F.col(event_time) <= F.lit(mature_before))
        .join(known, F.col(cfg.labels.key) == F.col("__label_key"), how="left")
        .withColumn(LABEL, F.col("__label_key").isNotNull().cast("int"))
        .drop("__label_key")
    )
    examples = with_asof_features(catalog, examples, cfg, versions=versions, event_time=event_time)
    excluded = {*cfg.exclude, LABEL, "label_available_at", event_time, FEATURES_AS_OF}
    feature_columns = tuple(c for c in examples.columns if c not in excluded and not c.endswith("asof_time"))
    time_columns = [FEATURES_AS_OF, *[f"{s.prefix}asof_time" for s in cfg.as_of]]
    audit_leakage(examples, label=LABEL, event_time=event_time, time_columns=time_columns,
                  feature_columns=[c for c in feature_columns if c not in cfg.categorical],
                  max_auc=cfg.max_single_feature_auc)
    log.info("training set at cutoff %s from versions %s", cutoff, json.dumps(versions, sort_keys=True))
    return TrainingSet(examples, versions, cutoff, feature_columns, tuple(cfg.categorical), event_time,
                       config_digest(cfg))


def stored_training_set(catalog: TableCatalog, cfg: TrainingSetConfig, *,
                        event_time: str = "event_time") -> TrainingSet | None:
    """gold.training_set as the features step wrote (and audited) it, when it is what
    build_training_set would build now: the same versions of every input table and the same
    configuration (an explicit cutoff is part of it; otherwise the cutoff follows from the
    versions). None when there is none or it is stale."""
    if not catalog.exists(TRAINING_SET):
        return None
    commit = first_row(catalog.delta_table(TRAINING_SET).history(1).select("version", "userMetadata"))
    lineage = json.loads(commit["userMetadata"] or "{}")
    current = {t: catalog.version(t) for t in input_tables(cfg)}
    if lineage.get("versions") != current or lineage.get("config_digest") != config_digest(cfg):
        return None
    return TrainingSet(catalog.read(TRAINING_SET, version=int(commit["version"])), lineage["versions"],
                       dt.datetime.fromisoformat(lineage["cutoff"]), tuple(lineage["feature_columns"]),
                       tuple(lineage["categorical"]), event_time, lineage["config_digest"])


def current_training_set(catalog: TableCatalog, cfg: TrainingSetConfig) -> TrainingSet:
    """The stored training set when it is current (no second build, no second audit), else a
    fresh build."""
    stored = stored_training_set(catalog, cfg)
    if stored is not None:
        log.info("training set: reusing %s (inputs unchanged since it was built)", TRAINING_SET)
        return stored
    log.info("training set: %s is missing or stale; building it", TRAINING_SET)
    return build_training_set(catalog, cfg)


def with_asof_features(catalog: TableCatalog, rows: DataFrame, cfg: TrainingSetConfig, *,
                       versions: dict[str, int] | None = None, event_time: str = "event_time") -> DataFrame:
    """The configured as-of attributes, strictly before each row's time.

    Training and scoring both call this: one code path, so no training/serving skew.
    """
    for source in cfg.as_of:
        table = catalog.read(source.table, version=(versions or {}).get(source.table))
        rows = asof_join(
            rows, table, on=[source.entity], left_time=event_time, right_time=source.timestamp,
            right_columns=list(source.columns), strict=True, prefix=source.prefix,
            max_age_seconds=duration_seconds(source.max_age) if source.max_age else None,
        )
    return rows


def write_training_set(catalog: TableCatalog, training: TrainingSet) -> int | None:
    """Persist the examples with their lineage in the commit (`userMetadata`)."""
    result = catalog.write(training.df, TRAINING_SET, mode="overwrite",
                           extra_options={"overwriteSchema": "true",
                                          "userMetadata": json.dumps(training.lineage(), sort_keys=True)})
    return result.version
