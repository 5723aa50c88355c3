"""The stream's live state (score.live_state) holds exactly the rows Delta holds, is read from
Delta only when a table moved by another writer's commit, and micro-batches scored through it
get the same scores and features as micro-batches that read everything from Delta."""

from __future__ import annotations

import json

import pytest
from lakeboost.io import TableCatalog
from lakeboost.model.tracking import use_tracking
from lakeboost.refine.pii import resolve_pii_key
from lakeboost.score import live_state
from lakeboost.score.live_features import past_events
from lakeboost.score.live_state import LiveState
from lakeboost.score.stream import ChampionCache, StreamCounts, score_live_batch
from lakeboost.spark.streams import BatchTxn
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from tests.helpers import make_config


def _same_rows(a: DataFrame, b: DataFrame) -> bool:
    return a.count() == b.count() and a.exceptAll(b).isEmpty() and b.exceptAll(a).isEmpty()


def test_state_grows_by_the_streams_commits_and_rereads_after_a_foreign_one(spark: SparkSession, tmp_path,
                                                                             monkeypatch) -> None:
    catalog = TableCatalog(spark, make_config(tmp_path).storage)
    monkeypatch.setattr(live_state, "MAX_APPENDED", 2)  # the appends merged within a few
    rows = spark.createDataFrame([(f"k{i}", float(i)) for i in range(12)], "k string, v double")
    catalog.write(rows.limit(2), "silver.live")
    state = LiveState(catalog, live_table="silver.live", predictions="gold.scored")
    assert state.written_keys(["k"]) is not None and state.reads == 1
    for i in range(2, 8):  # the stream's own appends: taken in, never read back
        piece = live_state.materialized(rows.filter(F.col("v") == i))
        state.appended("silver.live", catalog.write(piece, "silver.live", txn=("app", i)), piece)
        skipped = catalog.write(piece, "silver.live", txn=("app", i))  # a replay Delta skips: no second copy
        state.appended("silver.live", skipped, piece)
    assert state.reads == 1 and len(state.tables["silver.live"].parts) <= 3
    assert _same_rows(state.written_keys(["k", "v"]), catalog.read("silver.live"))
    catalog.write(rows.filter(F.col("v") >= 8), "silver.live")  # another writer
    assert _same_rows(state.written_keys(["k", "v"]), catalog.read("silver.live")) and state.reads == 2
    # The stream's next commit after a foreign one it has not seen: read again, not patched.
    piece = live_state.materialized(rows.filter(F.col("v") == 0).withColumn("k", F.lit("late")))
    catalog.write(rows.limit(1).withColumn("k", F.lit("other")), "silver.live")
    state.appended("silver.live", catalog.write(piece, "silver.live"), piece)
    assert _same_rows(state.written_keys(["k", "v"]), catalog.read("silver.live")) and state.reads == 3
    assert state.scored(["k"]) is None  # no predictions table yet


@pytest.mark.e2e
def test_batches_scored_through_the_state_equal_batches_that_read_delta(spark: SparkSession, demo,
                                                                         tmp_path) -> None:
    config, _ = demo
    catalog = TableCatalog(spark, config.storage)
    use_tracking(config)
    stream = config.scoring.stream
    live = catalog.read(stream.source)
    batches = [live.filter(F.abs(F.hash("txn_id")) % 2 == i) for i in range(2)]
    pii_key = resolve_pii_key(config.silver.tables[stream.contract].pii)
    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "metadata").write_text(json.dumps({"id": "state-test"}))
    txn = BatchTxn(spark, str(tmp_path / "checkpoint"))

    def run(suffix: str, keep_state: bool) -> LiveState | None:
        tables = {"predictions_table": f"gold.stream_{suffix}", "events_table": f"silver.live_{suffix}"}
        cfg = config.model_copy(update={"scoring": config.scoring.model_copy(update={
            "stream": stream.model_copy(update=tables)})})
        state = LiveState(catalog, live_table=tables["events_table"], predictions=tables["predictions_table"]) \
            if keep_state else None
        champion = ChampionCache(config.training.tracking.registered_model)
        reads = []
        for batch_id, batch in enumerate(batches):
            score_live_batch(catalog, cfg, batch, batch_id, champion=champion, pii_key=pii_key,
                             counts=StreamCounts(), txn=txn, state=state)
            reads.append(state.reads if state else 0)
        if state:  # every table read in the first batch, none again: its own commits were kept
            assert reads[0] == reads[1] > 0
        return state

    kept = run("kept", keep_state=True)
    run("read", keep_state=False)  # a fresh state per batch: everything read from Delta
    assert kept is not None
    # What the state holds is what Delta holds.
    events = catalog.read("silver.live_kept")
    assert _same_rows(kept.past_events(config.dataset.events, events.columns),
                      past_events(catalog, config.dataset, events, live_table="silver.live_kept"))
    scored = ["txn_id", "batch_id", "stream_query_id"]
    assert _same_rows(kept.scored(scored), catalog.read("gold.stream_kept").select(*scored))
    # Same predictions, features included, as the batches that read everything from Delta.
    compared = [c for c in catalog.read("gold.stream_kept").columns if c != "scored_at"]
    assert catalog.read("gold.stream_kept").count() == live.select("txn_id").distinct().count()
    assert _same_rows(catalog.read("gold.stream_kept").select(*compared),
                      catalog.read("gold.stream_read").select(*compared))
    business = [c for c in events.columns if not c.startswith("_")]
    assert _same_rows(events.select(*business), catalog.read("silver.live_read").select(*business))
