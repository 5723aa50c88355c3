"""Cross-validation folds: forward chaining over time, whole groups per fold, test untouched;
fold metrics logged with the final model's run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import mlflow
import pytest
from chispa import assert_df_equality
from lakeboost.config import load_config
from lakeboost.config.training import CrossValidationConfig, SplitConfig, TrainingConfig
from lakeboost.features.splits import SPLIT, fold_split, with_fold_blocks
from lakeboost.train.job import train_and_log
from pydantic import ValidationError
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from tests.conftest import REPO
from tests.train.conftest import synthetic


def _timeline(spark: SparkSession):
    # Two rows a day over six days; the last day is test.
    rows = [(f"t{d}{i}", dt.datetime(2026, 1, 1 + d, 9 + i), "test" if d == 5 else "train")
            for d in range(6) for i in range(2)]
    return spark.createDataFrame(rows, "txn_id string, event_time timestamp, split string")


def test_time_folds_chain_forward_and_never_touch_test(spark: SparkSession) -> None:
    numbered = with_fold_blocks(_timeline(spark), cfg=SplitConfig(kind="time"), folds=4, key=("txn_id",),
                                time_column="event_time")

    def fold(i: int) -> list[tuple[str, str]]:
        return sorted((r.txn_id, r.split) for r in fold_split(numbered, kind="time", fold=i).collect())

    # Five blocks of one day each: fold i trains on days 0..i and validates on day i + 1.
    for i in range(4):
        expected = sorted([(f"t{d}{j}", "train" if d <= i else "valid" if d == i + 1 else "test" if d == 5
                            else "unused") for d in range(6) for j in range(2)])
        assert fold(i) == expected


def test_group_folds_validate_every_row_once_and_keep_groups_whole(spark: SparkSession) -> None:
    rows = spark.range(400).select(F.format_string("t%03d", "id").alias("txn_id"), (F.col("id") % 37).alias("cust"),
                                   F.when(F.col("id") % 10 == 0, "test").otherwise("train").alias(SPLIT))
    cfg = SplitConfig(kind="group", group_column="cust")
    numbered = with_fold_blocks(rows, cfg=cfg, folds=3, key=("txn_id",), time_column="unused").persist()
    folds = [fold_split(numbered, kind="group", fold=i).select("txn_id", "cust", F.col(SPLIT).alias(f"s{i}"))
             for i in range(3)]
    joined = folds[0].join(folds[1], ["txn_id", "cust"]).join(folds[2], ["txn_id", "cust"])
    validated = sum((F.col(f"s{i}") == "valid").cast("int") for i in range(3))

    assert joined.filter(F.col("s0") == "test").count() == 40
    assert joined.filter((F.col("s0") != "test") & (validated != 1)).isEmpty()  # once each
    assert joined.filter((F.col("s0") == "test") & (validated != 0)).isEmpty()
    splits_per_group = joined.filter(F.col("s0") != "test").groupBy("cust").agg(
        *[F.countDistinct(f"s{i}").alias(f"n{i}") for i in range(3)])
    assert_df_equality(splits_per_group.filter("n0 > 1 OR n1 > 1 OR n2 > 1"), splits_per_group.limit(0))
    numbered.unpersist()


def test_one_fold_is_refused() -> None:
    with pytest.raises(ValidationError, match="1 fold is no cross-validation"):
        CrossValidationConfig(folds=1)


def test_train_logs_each_fold_and_the_spread_with_the_final_model(spark: SparkSession, tmp_path: Path) -> None:
    config = load_config("local", [f"storage.root={tmp_path}/lake", f"storage.landing={tmp_path}/landing"],
                         conf_dir=REPO / "conf", environ={})
    training_cfg = TrainingConfig.model_validate({
        "model": {"num_workers": 2, "n_estimators": 40, "early_stopping_rounds": 5},
        "cross_validation": {"folds": 3}})
    config = config.model_copy(update={"training": training_cfg})

    run_id, result, _ = train_and_log(spark, config, synthetic(spark, rows=4000), register=False)

    logged = mlflow.get_run(run_id).data.metrics
    folds = mlflow.artifacts.load_dict(f"runs:/{run_id}/cross_validation.json")["folds"]
    assert len(folds) == 3 and all(0 < f["pr_auc"] <= 1 and f["rounds"] >= 1 for f in folds)
    # Forward chaining: every fold trains on more rows than the one before.
    assert folds[0]["train_rows"] < folds[1]["train_rows"] < folds[2]["train_rows"]
    assert logged["cv_pr_auc_mean"] == pytest.approx(sum(f["pr_auc"] for f in folds) / 3)
    assert logged["cv_pr_auc_std"] > 0 and {f"cv_fold{i}_pr_auc" for i in range(3)} <= set(logged)
    assert "test" in result.metrics  # the final fit still evaluates on test; the folds never did
