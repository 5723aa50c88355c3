"""Batch scoring: gold features (+ the same as-of attributes as training) -> predictions table.

Features come from the gold table the training set was built from and pass through the same
as-of joins and encodings (stored with the model): one code path, no training/serving skew.
Predictions are upserted on (row key, model name, model version), so re-scoring replaces, never duplicates.
"""

from __future__ import annotations

import datetime as dt
import uuid

from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.metrics import objective_kind
from lakeboost.config.model import LakeboostConfig
from lakeboost.errors import ConfigError, ScoringError
from lakeboost.features.training_set import with_asof_features
from lakeboost.io.catalog import TableCatalog
from lakeboost.logs import StepSummary
from lakeboost.refine.conform import with_content_hash
from lakeboost.score.registry import CHAMPION, LoadedModel, load_model
from lakeboost.spark.rows import first_row
from lakeboost.train.calibrate import Calibrator
from lakeboost.train.prepare import apply_frequency_encodings
from lakeboost.train.tracking import use_tracking

# The model's inputs as scored, kept with each prediction (inference-table style): the live
# path computes its window features on the fly, so this is the only record of what it saw.
SCORED_FEATURES = "scored_features"


def predict(loaded: LoadedModel, rows: DataFrame, *, keep: tuple[str, ...] | None = None,
            with_features: bool = False) -> DataFrame:
    """`keep` columns (default: the model's event key) plus score, predicted_label, threshold,
    model name and version; with `with_features`, also `scored_features`: a struct of the model's
    inputs as they were scored (before encoding), which the monitor compares with training.

    Binary: `score` is the positive class's calibrated probability and `predicted_label`
    applies the model's threshold. Multiclass: `probabilities` (one per class) is added, `score` is the
    predicted class's probability and `predicted_label` that class; no threshold. Regression:
    `score` is the predicted value; no label, no threshold.
    """
    # A key column may also be the event time (one row per hour, say): each column once.
    keep = tuple(dict.fromkeys(loaded.dataset.key if keep is None else keep))
    missing = [c for c in loaded.meta.features if c not in rows.columns]
    if missing:
        raise ScoringError(f"model {loaded.name} v{loaded.version} expects features {missing}, which the "
                           f"input lacks; it has {sorted(rows.columns)}. Rebuild gold features with the "
                           "definitions the model was trained on, or score with a matching model")
    inputs = rows.select(*dict.fromkeys([*keep, *loaded.meta.features]))
    if with_features:  # captured before the encodings replace categories by frequencies
        keep = (*keep, SCORED_FEATURES)
        inputs = inputs.withColumn(SCORED_FEATURES, F.struct(*[F.col(f"`{f}`") for f in loaded.meta.features]))
    encoded = apply_frequency_encodings(inputs, loaded.meta.encodings)
    scored = loaded.model.transform(encoded)
    kind = objective_kind(loaded.meta.objective)
    extra: list[Column] = []
    threshold = F.lit(None).cast("double")
    if kind == "binary":
        cut = loaded.meta.threshold if loaded.meta.threshold is not None else 0.5
        score = vector_to_array(F.col("probability"))[1]
        calibrator = Calibrator.from_dict(loaded.meta.calibration)
        if calibrator is not None:  # the threshold was chosen on calibrated scores
            score = calibrator.column(score)
        label = (score >= F.lit(cut)).cast("int")
        threshold = F.lit(cut)
    elif kind == "multiclass":
        probabilities = vector_to_array(F.col("probability"))
        label = F.col("prediction").cast("int")
        score = F.element_at(probabilities, label + 1)
        extra.append(probabilities.alias("probabilities"))
    else:
        score, label = F.col("prediction").cast("double"), F.lit(None).cast("int")
    return scored.select(
        *keep, score.alias("score"), label.alias("predicted_label"), threshold.alias("threshold"), *extra,
        F.lit(loaded.name).alias("model_name"), F.lit(loaded.version).alias("model_version"),
    )


def rows_to_score(catalog: TableCatalog, config: LakeboostConfig, dataset: DatasetConfig,
                  dates: list[str] | None) -> DataFrame:
    ts = config.gold.training_set
    if ts is None:
        raise ConfigError("gold.training_set is not configured: scoring uses its feature table and as-of joins")
    features = catalog.read(ts.features)
    date = F.col(dataset.date_column)
    if dates:
        features = features.filter(date.isin([dt.date.fromisoformat(d) for d in dates]))
    else:  # the latest date partition: what a daily scheduled run scores
        latest = first_row(features.agg(F.max(date)))[0]
        features = features.filter(date == F.lit(latest))
    return with_asof_features(catalog, features, ts, dataset)


def score_step(spark: SparkSession, config: LakeboostConfig, *, ref: str = CHAMPION,
               dates: list[str] | None = None) -> StepSummary:
    catalog = TableCatalog(spark, config.storage)
    use_tracking(config)
    loaded = load_model(config.training.tracking.registered_model, ref)
    dataset = loaded.dataset  # the names the model was trained with
    rows = rows_to_score(catalog, config, dataset, dates)
    if rows.isEmpty():
        features = config.gold.training_set.features if config.gold.training_set else "gold"
        raise ScoringError(f"nothing to score in {features} for dates {dates or 'latest'}")
    run_id = uuid.uuid4().hex
    key = dataset.key
    predictions = (
        predict(loaded, rows, keep=(*key, dataset.event_time, dataset.date_column), with_features=True)
        .transform(with_content_hash, columns=[*key, "model_version", "score", "predicted_label", "threshold"])
        .withColumn("scoring_run_id", F.lit(run_id))
        .withColumn("scored_at", F.current_timestamp())
    )
    table = config.scoring.predictions_table
    # Keyed by model name too: two registered models may score into one table (their versions
    # both start at 1), and one must never overwrite the other's predictions.
    result = catalog.upsert(predictions, table, keys=(*key, "model_name", "model_version"), order_by=())
    summary = StepSummary("score", rows_written=result.rows_written)
    summary.details.update({"model": loaded.name, "model_version": loaded.version, "scoring_run_id": run_id,
                            "dates": dates or "latest"})
    if result.version is not None:
        summary.versions[table] = result.version
    return summary
