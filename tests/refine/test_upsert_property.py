"""Property: micro-batches deduplicated by `latest_per_key` and MERGEd by `TableCatalog.upsert`
(in the order refine gives it) leave the table a Python dictionary of latest-wins would hold."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lakeboost.io import TableCatalog
from lakeboost.io.hashing import with_content_hash
from lakeboost.refine.conform import latest_per_key
from lakeboost.refine.silver import merge_order
from pyspark.sql import SparkSession

from tests.helpers import make_config

SCHEMA = "k string, v int, payload string, _batch_id bigint, _source_position bigint"
SCHEMA_COLUMNS = ["k", "v", "payload", "_batch_id", "_source_position"]
Row = tuple[str, int | None, str]  # key, version (NULL allowed, ties likely), payload
Stored = tuple[int | None, str, int, int]  # version, payload, and the arrival of the row that wrote it

rows = st.tuples(st.sampled_from("ab"), st.none() | st.integers(0, 1), st.sampled_from(["x", "y"]))
# Two batches (a write, then a MERGE): each MERGE costs about 15 Spark jobs, so longer chains are
# the explicit example below.
batches = st.lists(st.lists(rows, min_size=1, max_size=4), min_size=2, max_size=2)
# A chain of MERGEs: ties on a version (a's 0, b's NULL) go to the later batch, though the row hash
# would keep the earlier row; a version beats NULL (c); an equal row keeps the lineage of the row
# that wrote it (d).
CHAIN = [[("a", 0, "x"), ("b", None, "x")],
         [("b", None, "y"), ("c", None, "x"), ("d", 1, "x")],
         [("a", 0, "y"), ("c", None, "x"), ("c", 1, "y"), ("d", 1, "x")]]


def _rank(version: int | None, batch: int, position: int) -> tuple:
    # Descending by version with NULL lowest, then by arrival (batch, then position in it).
    return (version is not None, version if version is not None else 0, batch, position)


def model(history: list[list[Row]], *, ordered: bool) -> dict[str, Stored]:
    """Latest-wins by hand. In a batch the highest rank wins (without a version, the last row);
    across batches a different row replaces the stored one when it ranks above it (always,
    without a version: it arrived later); an equal row changes nothing, its lineage included."""
    table: dict[str, Stored] = {}
    for batch, rows_in in enumerate(history):
        latest: dict[str, tuple[tuple, Stored]] = {}
        for position, (key, version, payload) in enumerate(rows_in):
            rank = _rank(version if ordered else None, batch, position)
            if key not in latest or rank > latest[key][0]:
                latest[key] = (rank, (version, payload, batch, position))
        for key, (rank, row) in latest.items():
            old = table.get(key)
            if old is None or (old[:2] != row[:2] and (not ordered or rank > _rank(old[0], old[2], old[3]))):
                table[key] = row
    return table


_examples = itertools.count()
CHANGE_FEED = "spark.databricks.delta.properties.defaults.enableChangeDataFeed"


@pytest.fixture(scope="module")
def no_change_feed(spark: SparkSession) -> Iterator[None]:
    """The tables here need no change feed, whose files made each MERGE about twice as slow."""
    previous = spark.conf.get(CHANGE_FEED, None)
    spark.conf.set(CHANGE_FEED, "false")
    yield
    if previous is None:
        spark.conf.unset(CHANGE_FEED)
    else:
        spark.conf.set(CHANGE_FEED, previous)


@settings(max_examples=15, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=batches, ordered=st.booleans())
@example(history=CHAIN, ordered=True)
def test_upserted_batches_equal_a_latest_wins_dictionary(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory,
                                                         no_change_feed: None, history: list[list[Row]],
                                                         ordered: bool) -> None:
    root = tmp_path_factory.mktemp(f"upsert{next(_examples)}")
    catalog = TableCatalog(spark, make_config(Path(root)).storage)
    order_by = ("v",) if ordered else ()
    for batch, rows_in in enumerate(history):
        df = (
            spark.createDataFrame([(*r, batch, i) for i, r in enumerate(rows_in)], SCHEMA)
            .transform(with_content_hash, columns=["k", "v", "payload"])
            .transform(latest_per_key, keys=("k",), order_by=order_by)
        )
        catalog.upsert(df, "silver.t", keys=("k",), order_by=merge_order(catalog, "silver.t", order_by, df.columns))

    # The whole table, row for row (one job: a second DataFrame to compare with would cost more).
    table = catalog.read("silver.t")
    assert table.columns == [*SCHEMA_COLUMNS, "_row_hash"]
    actual = sorted(tuple(row) for row in table.drop("_row_hash").collect())
    assert actual == sorted((k, *row) for k, row in model(history, ordered=ordered).items())
