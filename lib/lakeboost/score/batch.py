"""Batch scoring: gold features (+ the same as-of attributes as training) -> predictions table.

Features come from the gold table the training set was built from and pass through the same
as-of joins and encodings (stored with the model): one code path, no training/serving skew.
Predictions are upserted on (row key, model name, model version), so re-scoring replaces, never duplicates.
"""

from __future__ import annotations

import datetime as dt
import uuid

import mlflow
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.model import LakeboostConfig
from lakeboost.errors import ScoringError
from lakeboost.features.training_set import with_asof_features
from lakeboost.io.catalog import TableCatalog
from lakeboost.io.hashing import with_content_hash
from lakeboost.logs import StepSummary
from lakeboost.model import CHAMPION, load_model, model_tags, use_tracking
from lakeboost.spark.rows import first_row


def scored_dates(config: LakeboostConfig, dates: list[str] | None = None, *, since: dt.date | None = None,
                 until: dt.date | None = None) -> str:
    """What a score run scores, in words: the dates named, the range given, else `scoring.dates`."""
    if dates:
        return ", ".join(dates)
    scoring = config.scoring
    if since is None and until is None and scoring.dates != "range":
        return f"the latest {scoring.latest_days} days" if scoring.dates == "latest" and scoring.latest_days > 1 \
            else scoring.dates
    since, until = (since, until) if since is not None or until is not None else (scoring.since, scoring.until)
    return f"{since or 'the first'} .. {until or 'the last'}"


def rows_to_score(catalog: TableCatalog, config: LakeboostConfig, dataset: DatasetConfig,
                  dates: list[str] | None, *, since: dt.date | None = None, until: dt.date | None = None) -> DataFrame:
    """The feature rows to score: the date partitions named, else those from `since` to `until`
    (inclusive), else what `scoring.dates` says (the latest `latest_days`, all, or its range). Filters on the date
    column prune partitions; only `latest` reads the table's largest date first."""
    ts = config.gold.training_set
    assert ts is not None, "the score step requires gold.training_set (lakeboost.steps.check_steps)"
    features = catalog.read(ts.features)
    date = F.col(dataset.date_column)
    scoring = config.scoring
    if not dates and since is None and until is None and scoring.dates == "range":
        since, until = scoring.since, scoring.until
    if dates:
        features = features.filter(date.isin([dt.date.fromisoformat(d) for d in dates]))
    elif since is not None or until is not None:
        if since is not None:
            features = features.filter(date >= F.lit(since))
        if until is not None:
            features = features.filter(date <= F.lit(until))
    elif scoring.dates == "latest":  # the latest date partition(s): what a daily scheduled run scores
        latest = first_row(features.agg(F.max(date)))[0]
        first = latest - dt.timedelta(days=scoring.latest_days - 1) if latest is not None else None
        features = features.filter((date >= F.lit(first)) & (date <= F.lit(latest)))
    return with_asof_features(catalog, features, ts, dataset)


def score_step(catalog: TableCatalog, config: LakeboostConfig, *, ref: str = CHAMPION,
               dates: list[str] | None = None, since: dt.date | None = None,
               until: dt.date | None = None) -> StepSummary:
    use_tracking(config)
    loaded = load_model(config.training.tracking.registered_model, ref)
    dataset = loaded.dataset  # the names the model was trained with
    rows = rows_to_score(catalog, config, dataset, dates, since=since, until=until)
    scope = scored_dates(config, dates, since=since, until=until)
    if rows.isEmpty():
        features = config.gold.training_set.features if config.gold.training_set else "gold"
        raise ScoringError(f"nothing to score in {features} for dates {scope}")
    run_id = uuid.uuid4().hex
    key = dataset.key
    predictions = (
        loaded.predict(rows, keep=(*key, dataset.event_time, dataset.date_column), with_features=True)
        .transform(with_content_hash, columns=[*key, "model_version", "score", "predicted_label", "threshold"])
        .withColumn("scoring_run_id", F.lit(run_id))
        .withColumn("scored_at", F.current_timestamp())
    )
    table = config.scoring.predictions_table
    # Keyed by model name too: two registered models may score into one table (their versions
    # both start at 1), and one must never overwrite the other's predictions.
    result = catalog.upsert(predictions, table, keys=(*key, "model_name", "model_version"), order_by=())
    with mlflow.start_run(run_name="score", nested=mlflow.active_run() is not None,
                          tags=model_tags(loaded) | {"scoring_run_id": run_id}):
        mlflow.log_params({"dates": scope[:500], "predictions_table": table})
        mlflow.log_metric("rows_written", result.rows_written)
    summary = StepSummary("score", rows_written=result.rows_written)
    summary.details.update({"model": loaded.name, "model_version": loaded.version, "scoring_run_id": run_id,
                            "dates": scope})
    if result.version is not None:
        summary.versions[table] = result.version
    return summary
