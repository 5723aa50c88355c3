"""Streaming scoring: live events from bronze -> the batch feature code -> champion -> Delta.

Every micro-batch of live events is
1. refined with the silver contract of the batch events by the code batch refine runs
   (refine.contract: same casts, expectations, PII hashing and content hash; failures go to
   the quarantine table with their reason),
2. integrated by the same declarative integration as the batch events (`scoring.stream.integration`),
3. given its features by `compute_features` (the batch code, score.live_features) over the
   batch plus the history the windows reach into: `dataset.events` and the live events of earlier
   micro-batches (`events_table`, minus the batch's own keys, which a replay may already have
   written), restricted to the batch's entities. Window
   state therefore lives in Delta, not in Spark's state store: a restart loses none of it and
   a late micro-batch sees exactly what a batch rebuild would,
4. scored by the model that is champion *when the micro-batch runs* (a promotion is picked up
   at the next micro-batch; the model version is written with every prediction),
5. written as two appends, the refined events first, then the predictions, each left out where
   Delta already holds it: an event whose key is in the live events table is not written again,
   one whose key is in the predictions table is not scored again (the state checks both tables'
   versions every batch, see score.live_state). A batch replayed after a kill between the two
   commits writes only the predictions; one replayed after both finds nothing to write.
Idempotency is keyed on the data, not on Delta's `txnAppId`/`txnVersion`: checking a txn version
makes Delta reconstruct the table's whole snapshot state (three Spark jobs, ~1 s a commit on 2
cores, twice a micro-batch), while the keys are already at hand. That also covers what a txn
cannot: a re-sent event, or every event again after the checkpoint was lost and the stream
restarted from bronze's first version under a new query; such events are counted as duplicates.
Live events lacking a contract column are refused unless `scoring.stream.absent_columns` declares it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.durations import spark_interval
from lakeboost.config.model import LakeboostConfig
from lakeboost.config.monitoring import StreamScoringConfig
from lakeboost.errors import ConfigError, ScoringError
from lakeboost.faults import fault_point
from lakeboost.features.label_rates import label_source
from lakeboost.features.training_set import with_asof_features
from lakeboost.io.catalog import TableCatalog
from lakeboost.logs import StepSummary
from lakeboost.model import CHAMPION, Model, load_model, use_tracking
from lakeboost.model.registry import resolve_version
from lakeboost.refine import expectations as ex
from lakeboost.refine.contract import apply_contract, batch_counts, split_contract
from lakeboost.refine.integrate import integrate
from lakeboost.refine.pii import resolve_pii_key
from lakeboost.score.live_features import live_features
from lakeboost.score.live_state import LiveState, StateCatalog, materialized
from lakeboost.spark.conf import apply_conf
from lakeboost.spark.streams import BatchLedger, BatchTxn, await_query

log = logging.getLogger(__name__)
APP_ID = "lakeboost.stream_score"
STREAM_QUERY = "stream_query_id"  # the streaming query that wrote a prediction


@dataclass
class StreamCounts:
    batches: int = 0
    rows_in: int = 0
    scored: int = 0
    quarantined: int = 0
    dropped: int = 0
    duplicates: int = 0  # repeated in the batch or scored before: the first prediction stands
    model_versions: list[int] = field(default_factory=list)


class ChampionCache:
    """The champion, re-resolved every micro-batch (a cheap registry call), reloaded on change."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loaded: Model | None = None

    def __getstate__(self) -> dict:
        # Sent to a Spark Connect server's Python worker with the batch function: without the
        # loaded model, which the worker loads from the registry itself.
        return {"name": self.name, "loaded": None}

    def current(self) -> Model:
        version = resolve_version(self.name, CHAMPION)
        if self.loaded is None or self.loaded.version != version:
            self.loaded = load_model(self.name, str(version))
            log.info("stream scoring: now using %s v%d", self.name, version)
        return self.loaded


def missing_live_columns(config: LakeboostConfig, columns: list[str]) -> list[str]:
    """Contract columns the live source lacks (those computed by an `expr` are not read)."""
    table = config.silver.tables[stream_config(config).contract]
    return [name for name in table.columns if name not in columns and not table.columns[name].expr]


def require_live_columns(config: LakeboostConfig, columns: list[str]) -> None:
    """Refuse a live source lacking a contract column it does not declare absent: its events
    would be scored with that column NULL, a silent change of what the model sees."""
    stream = stream_config(config)
    undeclared = [c for c in missing_live_columns(config, columns) if c not in stream.absent_columns]
    if undeclared:
        raise ScoringError(
            f"live source {stream.source} lacks column(s) {undeclared} of the contract silver.{stream.contract}; "
            f"add them to the live events, or list them in scoring.stream.absent_columns to score with NULL")


def refine_live_events(batch: DataFrame, config: LakeboostConfig, pii_key: bytes) -> DataFrame:
    """The silver contract applied to live events (columns declared absent arrive as NULL)."""
    table = config.silver.tables[stream_config(config).contract]
    require_live_columns(config, batch.columns)
    missing = missing_live_columns(config, batch.columns)
    padded = batch.select("*", *[F.lit(None).cast("string").alias(name) for name in missing])
    return apply_contract(padded, table=table, pii_key=pii_key)


def integrate_live(catalog: TableCatalog, config: LakeboostConfig, clean: DataFrame) -> DataFrame:
    """The live events through the integration the batch events went through (one definition)."""
    stream = stream_config(config)
    if stream.integration is None:
        return clean.select(*[c for c in clean.columns if not c.startswith("_")])
    spec = config.silver.integrations[stream.integration]
    tables = {table: catalog.read(table) for table in spec.inputs()[1:]}
    return integrate(clean, spec, tables)


def static_tables(config: LakeboostConfig, dataset: DatasetConfig) -> set[str]:
    """The tables a micro-batch only reads: the integration's inputs besides the events, the
    as-of joins' and the label rates' tables (kept in the LiveState at their latest version)."""
    stream = stream_config(config)
    tables: set[str] = set()
    if stream.integration is not None:
        tables |= set(config.silver.integrations[stream.integration].inputs()[1:])
    ts = config.gold.training_set
    if ts is not None:
        tables |= {join.table for join in ts.as_of}
        features = config.gold.features[_feature_set(config)]
        tables |= {label_source(g, dataset).table for g in features.label_rates.values()}
    return tables - {dataset.events, stream.events_table, stream.predictions_table}


def score_live_batch(catalog: TableCatalog, config: LakeboostConfig, batch: DataFrame, batch_id: int, *,
                     champion: ChampionCache, pii_key: bytes, counts: StreamCounts, txn: BatchTxn,
                     state: LiveState | None = None) -> None:
    """Score one micro-batch. `state` (kept across the query's micro-batches) holds the history,
    the scored keys and the dimension tables as Delta has them; without it they are read now."""
    stream = stream_config(config)
    contract = config.silver.tables[stream.contract]
    started = time.monotonic()
    phases: dict[str, float] = {}
    state = state or LiveState(catalog, live_table=stream.events_table, predictions=stream.predictions_table)
    restore = _small_batch_conf(stream, batch.sparkSession, catalog.spark)

    jobs_of = _job_counter(batch)
    jobs: dict[str, int] = {}

    def phase(name: str) -> None:  # seconds (and Spark jobs) since the previous phase ended
        phases[name] = round(time.monotonic() - started - sum(phases.values()), 1)
        if jobs_of is not None:
            jobs[name] = jobs_of() - sum(jobs.values())

    refined = refine_live_events(batch, config, pii_key).persist()
    try:
        tally = batch_counts(refined, contract.expectations)
        ex.raise_on_fail_rules(refined, expectations=contract.expectations, key_columns=contract.keys,
                               table=stream.source, violations=tally.violations)
        rows_in, quarantined, dropped_rows = tally.rows_in, tally.quarantined, tally.dropped
        phase("contract")
        clean, refused = split_contract(refined, table=contract, quarantine_as=stream.source,
                                        run_id=f"stream-{batch_id}", batch_id=batch_id)
        if quarantined:
            quarantine = stream.quarantine_table
            assert quarantine is not None, "scoring.stream.quarantine_table is resolved when LakeboostConfig loads"
            if catalog.exists(quarantine):  # keyed on the record: a new query re-reads bronze
                earlier = catalog.read(quarantine).filter(F.col("table") == F.lit(stream.source))
                refused = refused.join(earlier.select("table", "record"), ["table", "record"], "left_anti")
            catalog.write(refused, quarantine, txn=txn(f"{APP_ID}.quarantine", batch_id))
        loaded = champion.current()
        dataset = loaded.dataset  # the key, times and label the champion was trained with
        key = list(dataset.key)
        reading = StateCatalog(catalog, state, static_tables(config, dataset))
        phase("champion")
        scored = state.scored(key)
        if scored is not None:  # a scored event keeps its first prediction (a replay's included)
            clean = clean.join(scored.select(*key), key, "left_anti")
        # Materialized once: the features, the predictions and the events write all read it.
        enriched = materialized(integrate_live(reading, config, clean))
        stats = enriched.agg(F.count(F.lit(1)).alias("rows"), F.min(dataset.event_time).alias("first")).first()
        assert stats is not None
        to_score = int(stats["rows"])
        phase("enrich")
        if to_score:
            ts = config.gold.training_set
            assert ts is not None  # checked when the stream starts
            features = live_features(reading, config.gold.features[_feature_set(config)], dataset, enriched,
                                     stats["first"], past=state.past_events(dataset.events, enriched.columns))
            rows = with_asof_features(reading, features, ts, dataset)
            predictions = (
                loaded.predict(rows, keep=(*key, dataset.event_time, dataset.date_column), with_features=True)
                .withColumn("batch_id", F.lit(batch_id).cast("bigint"))
                .withColumn(STREAM_QUERY, F.lit(txn.query_id))
                .withColumn("scored_at", F.current_timestamp())
            )
            # Events a killed batch (or an earlier query) wrote without their predictions are not
            # written twice.
            written = state.written_keys(key)
            new_events = enriched if written is None else materialized(enriched.join(written, key, "left_anti"))
            result = catalog.write(new_events, stream.events_table)
            state.appended(stream.events_table, result, new_events)
            phase("events_write")
            fault_point("score_stream.after_events_commit", batch_id)
            # A new champion may score other features: its fields join the struct.
            result = catalog.write(predictions, stream.predictions_table, partition_by=(dataset.date_column,),
                                   merge_schema=True)
            state.appended(stream.predictions_table, result, enriched.select(*key))
            phase("features_predict_write")
            fault_point("score_stream.after_predictions_commit", batch_id)
    finally:
        refined.unpersist()
        restore()
    counts.batches += 1
    counts.rows_in += rows_in
    counts.quarantined += quarantined
    counts.scored += to_score
    counts.dropped += dropped_rows
    counts.duplicates += rows_in - quarantined - dropped_rows - to_score
    if loaded.version not in counts.model_versions:
        counts.model_versions.append(loaded.version)
    log.info("stream batch %d: %d in, %d scored with v%d, %d quarantined, %d dropped by contract; seconds %s; "
             "spark jobs %s", batch_id, rows_in, to_score, loaded.version, quarantined, dropped_rows, phases, jobs)


def stream_score(catalog: TableCatalog, config: LakeboostConfig, *, continuous: bool = False,
                 timeout_seconds: float | None = None) -> StepSummary:
    """Score live events until caught up (default) or, with `continuous`, as they arrive."""
    stream = stream_config(config)
    use_tracking(config)
    champion = ChampionCache(config.training.tracking.registered_model)
    champion.current()  # fail before the stream starts when there is no champion
    require_live_columns(config, catalog.read(stream.source).columns)
    contract = config.silver.tables[stream.contract]
    pii_key = resolve_pii_key(contract.pii) if contract.pii.hash else b""
    counts = StreamCounts()
    checkpoint = catalog.checkpoint(stream.predictions_table, "stream_score")
    txn = BatchTxn(catalog.spark, checkpoint)
    state = LiveState(catalog, live_table=stream.events_table, predictions=stream.predictions_table)

    tracking_here = [True]  # False in the copy a Spark Connect server's Python worker runs

    def process(batch: DataFrame, batch_id: int) -> None:
        if not tracking_here[0]:  # the server's worker: point its MLflow at the registry too, once
            use_tracking(config)
            tracking_here[0] = True
        score_live_batch(catalog, config, batch, batch_id, champion=champion, pii_key=pii_key, counts=counts,
                         txn=txn, state=state)

    started = time.monotonic()
    ledger = BatchLedger(catalog.spark, checkpoint, counts)  # the batches' counts, also from a Connect server
    tracking_here[0] = not ledger.connect
    writer = (
        catalog.read_stream(stream.source, maxFilesPerTrigger=str(stream.max_files_per_trigger))
        .writeStream.foreachBatch(ledger.wrap(process))
        .option("checkpointLocation", checkpoint)
        .queryName("stream_score")
    )
    writer = writer.trigger(processingTime=spark_interval(stream.interval)) if continuous \
        else writer.trigger(availableNow=True)
    try:
        await_query(writer.start(), "stream scoring", timeout_seconds if continuous else None)
    finally:
        state.release()
    ledger.settle()
    summary = StepSummary("stream_score", rows_read=counts.rows_in, rows_written=counts.scored,
                          rows_quarantined=counts.quarantined, rows_skipped=counts.dropped + counts.duplicates)
    summary.details.update({"batches": counts.batches, "model_versions": counts.model_versions,
                            "dropped": counts.dropped, "duplicates": counts.duplicates,
                            "seconds": round(time.monotonic() - started, 2)})
    version = catalog.version(stream.predictions_table)
    if version is not None:
        summary.versions[stream.predictions_table] = version
    return summary


def _small_batch_conf(stream: StreamScoringConfig, *sessions: SparkSession) -> Callable[[], None]:
    """`scoring.stream.shuffle_partitions` and no adaptive execution in the sessions a micro-batch
    runs in: the query's own (a clone) and the catalog's, whose tables (the kept state, the
    dimensions) most of the batch's plans start from, so its actions run under its conf. A
    micro-batch is a few rows: adaptive execution runs every shuffle stage as a job of its own
    and coalesces 200 partitions that a fixed 2 never make (demo, 10 live events a batch: 25
    Spark jobs a micro-batch instead of 38, 17 of them for the features, predictions and their
    write instead of 22). Returns what puts the conf back."""
    if stream.shuffle_partitions is None:
        return lambda: None
    return apply_conf({"spark.sql.shuffle.partitions": str(stream.shuffle_partitions),
                       "spark.sql.adaptive.enabled": "false"}, *sessions)


def _job_counter(batch: DataFrame) -> Callable[[], int] | None:
    """Spark jobs run so far by this query (its job group is the query's run id), or None where
    the context is not reachable (Spark Connect)."""
    try:
        sc = batch.sparkSession.sparkContext
        group = sc.getLocalProperty("spark.jobGroup.id")
    except Exception:  # noqa: BLE001 - Spark Connect has no SparkContext
        return None
    if group is None:
        return None
    tracker = sc.statusTracker()
    base = len(tracker.getJobIdsForGroup(group))
    return lambda: len(tracker.getJobIdsForGroup(group)) - base


def stream_config(config: LakeboostConfig) -> StreamScoringConfig:
    if config.scoring.stream is None:
        raise ConfigError("scoring.stream is not configured: stream scoring needs the live source, the silver "
                          "contract the events obey and the events and predictions tables")
    return config.scoring.stream


def _feature_set(config: LakeboostConfig) -> str:
    ts = config.gold.training_set
    assert ts is not None
    return ts.features.split(".", 1)[1]
