"""A feature table is rebuilt when its own spec changes, not only when its inputs do.

The spec is edited as a user would, with `--set` overrides of the loaded config: a window, an
aggregate, and a late outcome's availability (which changes values, not column names).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from chispa import assert_df_equality
from lakeboost.config.tables import FrameworkTables
from lakeboost.features.build import build_feature_set
from lakeboost.features.training_set import current_training_set
from lakeboost.io import TableCatalog
from lakeboost.pipeline import run_step
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from tests.features import small_lake

STATE, TRAINING_SET = FrameworkTables().feature_state, FrameworkTables().training_set

EDITS = ["gold.features.feats.groups.cust.windows=[1d, 2d]", "gold.features.feats.groups.cust.aggs.amount=[sum, max]",
         "dataset.outcomes.settled=settled_at + INTERVAL 1 DAY"]


def test_an_edited_feature_set_reaches_gold_and_the_training_set_as_a_full_rebuild_would(
        spark: SparkSession, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    conf = small_lake.conf_dir(tmp_path)
    before = small_lake.config(conf)
    small_lake.write_inputs(spark, before)
    catalog = TableCatalog(spark, before.storage)
    run_step(spark, before, "features")
    old = {r.txn_id: r.cust_settled_settled_sum_2d for r in catalog.read("gold.feats").collect()}

    edited = small_lake.config(conf, *EDITS)
    with caplog.at_level(logging.INFO, logger="lakeboost.features.build"):
        summary = run_step(spark, edited, "features")

    assert summary.details["feats"]["mode"] == "full"  # the inputs did not change
    assert "the spec of gold.features.feats changed since its last build (features.groups.cust.windows, " \
           "features.groups.cust.aggs.amount, outcomes.cust_settled.settled" in caplog.text
    assert summary.details["training_set"]["rebuilt"]
    gold = catalog.read("gold.feats", version=summary.versions["gold.feats"])
    training = catalog.read(TRAINING_SET, version=summary.versions[TRAINING_SET])
    # Values moved too: settlements now count a day later (not just new columns).
    new = {r.txn_id: r.cust_settled_settled_sum_2d for r in gold.collect()}
    assert new != old and new["T50"] == 3.0 and old["T50"] == 5.0
    # What the train step reads: the stored set, current, with the new features in its feature list.
    stored = current_training_set(catalog, edited.gold.training_set, edited.require_dataset)
    assert {"cust_amount_sum_2d", "cust_amount_max_1d", "cust_amount_max_2d"} <= set(stored.feature_columns)

    rebuilt = run_step(spark, edited, "features", full_rebuild=True)
    assert_df_equality(gold, catalog.read("gold.feats", version=rebuilt.versions["gold.feats"]),
                       ignore_row_order=True, ignore_nullable=True, ignore_column_order=True)
    assert_df_equality(training, catalog.read(TRAINING_SET, version=rebuilt.versions[TRAINING_SET]),
                       ignore_row_order=True, ignore_nullable=True, ignore_column_order=True)

    again = run_step(spark, edited, "features")
    assert again.details["feats"]["mode"] == "unchanged" and not again.details["training_set"]["rebuilt"]


def test_a_state_recorded_without_a_spec_rebuilds_once(spark: SparkSession, tmp_path: Path) -> None:
    cfg = small_lake.config(small_lake.conf_dir(tmp_path, training_set=False))
    small_lake.write_inputs(spark, cfg)
    catalog = TableCatalog(spark, cfg.storage)
    features, dataset = cfg.gold.features["feats"], cfg.require_dataset
    built = build_feature_set(catalog, "feats", features, dataset)
    # The state as lakeboost wrote it before it kept the spec: input versions only.
    old_state = catalog.read(STATE).select("feature_set", "input", "input_version", "built_version", "built_at")
    catalog.write(old_state.localCheckpoint(), STATE, mode="overwrite", extra_options={"overwriteSchema": "true"})

    first = build_feature_set(catalog, "feats", features, dataset)
    second = build_feature_set(catalog, "feats", features, dataset)

    assert (first["mode"], second["mode"]) == ("full", "unchanged")
    assert built["spec_digest"] == first["spec_digest"]
    recorded = catalog.read(STATE).filter(F.col("built_version") == first["version"])
    assert {r.spec_digest for r in recorded.collect()} == {first["spec_digest"]}
