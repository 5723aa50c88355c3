"""The fit's rows as files: each worker partition's rows in its own file, read back exactly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost
from lakeboost.borrowed.xgboost_spark import TRAIN_CURVE_SAMPLE, validation_only
from lakeboost.errors import TrainingError
from lakeboost.train.fit import train_recording_times
from lakeboost.train.prepare import VALID, layout_for_workers, partition_counts
from lakeboost.train.worker_files import (
    WorkerFileReader,
    curve_sample,
    file_layout,
    files_directory,
    fit_matrices,
    openmp_threads,
    placeholder,
    remove,
    write_worker_files,
)
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from xgboost.spark.data import create_dmatrix_from_partitions


def test_each_worker_reads_exactly_its_partitions_rows_with_float_features(spark: SparkSession,
                                                                           tmp_path: Path) -> None:
    rows = spark.range(300).select(
        F.format_string("K%d", "id").alias("txn_id"), (F.col("id") % 7 == 0).cast("int").alias("label"),
        (F.col("id") % 5 == 1).alias(VALID), (F.col("id") / 3).alias("f_double"),
        F.when(F.col("id") % 11 == 0, None).otherwise(F.col("id")).alias("f_long_with_nulls"))
    laid = layout_for_workers(rows, num_workers=3, label="label", key=("txn_id",)).cache()
    files = write_worker_files(laid, str(tmp_path / "fit"), features=["f_double", "f_long_with_nulls"],
                               others=["label", VALID])

    assert sorted(file_layout(spark, files, label="label", valid=VALID).collect()) == \
        sorted(partition_counts(laid, label="label").collect())
    reader = WorkerFileReader(files, {"label": "label", VALID: "validationIndicator"})
    for partition in range(3):
        expected = (laid.filter(F.spark_partition_id() == partition)
                    .select(F.col("f_double").cast("float"), F.col("f_long_with_nulls").cast("float"), "label",
                            F.col(VALID).alias("validationIndicator")).toPandas())
        got = reader.read(partition)
        assert list(got.columns) == ["f_double", "f_long_with_nulls", "label", "validationIndicator"]
        assert str(got["f_double"].dtype) == "float32" and got["f_long_with_nulls"].isna().sum() > 0
        pd.testing.assert_frame_equal(got.sort_values(["f_double"]).reset_index(drop=True),
                                      expected.sort_values(["f_double"]).reset_index(drop=True))
    with pytest.raises(TrainingError, match="no worker file for partition 3"):
        reader.read(3)

    stand_in = placeholder(spark, 3, laid, files.columns)
    assert stand_in.rdd.getNumPartitions() == 3 and stand_in.count() == 3
    assert [f.dataType for f in stand_in.schema.fields] == \
        [laid.schema[c].dataType for c in files.columns]
    remove(spark, files.path)
    assert not Path(files.path).exists()


def test_files_go_to_a_temporary_directory_locally_and_to_the_configured_one_on_a_cluster() -> None:
    assert files_directory(None, mode="auto", master="spark://host:7077") is None  # xgboost.spark's stream
    assert files_directory(None, mode="spark", master="local[2]") is None
    assert "lakeboost-fit-" in (files_directory(None, mode="auto", master="local[*]") or "")
    assert (files_directory("s3://bucket/tmp/", mode="auto", master="yarn") or "").startswith("s3://bucket/tmp/fit-")
    with pytest.raises(TrainingError, match="worker_files_dir"):
        files_directory(None, mode="files", master="yarn")


def test_a_python_worker_runs_xgboost_on_as_many_openmp_threads_as_it_is_given(spark: SparkSession) -> None:
    # PySpark caps its Python workers at OMP_NUM_THREADS=spark.task.cpus; a worker given both cores
    # of the local master must get both for xgboost, and the cap must come back afterwards.
    def xgboost_openmp_threads(_: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import xgboost  # noqa: F401  loads the OpenMP runtime xgboost uses (its soname may be shared)
        from threadpoolctl import threadpool_info

        def threads() -> int:
            return max(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "openmp")

        before = threads()
        with openmp_threads(2):
            during = threads()
        yield pd.DataFrame({"before": [before], "during": [during], "after": [threads()]})

    got = spark.range(1).coalesce(1).mapInPandas(xgboost_openmp_threads, "before int, during int, after int")
    assert got.collect()[0].asDict() == {"before": 1, "during": 2, "after": 1}


def test_fit_matrices_train_as_xgboost_sparks_builder_with_the_validation_rows_as_a_plain_dmatrix() -> None:
    # Oracle: xgboost.spark's own builder on the same rows. Same training rows, cuts and
    # validation rows, so training on either pair gives the same trees and the same validation curve.
    rng = np.random.default_rng(3)
    n = 2_000
    frame = pd.DataFrame({"a": rng.normal(size=n).astype(np.float32), "b": rng.integers(0, 40, n).astype(np.float32),
                          "label": rng.integers(0, 2, n), "validationIndicator": rng.random(n) < 0.25,
                          "weight": rng.uniform(0.5, 2.0, n)})
    frame.loc[frame.index % 13 == 0, "a"] = np.nan
    kwargs = {"nthread": 1, "missing": np.nan, "max_bin": 32}
    theirs = create_dmatrix_from_partitions(iterator=iter([frame]), feature_cols=["a", "b"], dev_ordinal=None,
                                            use_qdm=True, kwargs=kwargs, enable_sparse_data_optim=False,
                                            has_validation_col=True)
    names = {"label": "label", "validationIndicator": "validationIndicator", "weight": "weight"}
    ours = fit_matrices(lambda name: frame[name].to_numpy(), ["a", "b"], names, kwargs, has_validation_col=True)

    assert isinstance(ours[0], xgboost.QuantileDMatrix) and type(ours[1]) is xgboost.DMatrix
    for mine, other in zip(ours, theirs, strict=True):
        assert (mine.num_row(), mine.num_col()) == (other.num_row(), other.num_col())
        np.testing.assert_array_equal(mine.get_label(), other.get_label())
        np.testing.assert_array_equal(mine.get_weight(), other.get_weight())
    np.testing.assert_array_equal(ours[0].get_quantile_cut()[1], theirs[0].get_quantile_cut()[1])

    def curve(train, valid) -> list[float]:
        history: dict = {}
        xgboost.train({"objective": "binary:logistic", "eval_metric": "logloss", "max_bin": 32, "nthread": 1},
                      train, num_boost_round=5, evals=[(valid, "validation")], evals_result=history,
                      verbose_eval=False)
        return history["validation"]["logloss"]

    np.testing.assert_allclose(curve(*ours), curve(*theirs), rtol=1e-6)
    no_validation = fit_matrices(lambda name: frame[name].to_numpy(), ["a", "b"], names, kwargs,
                                 has_validation_col=False)
    assert no_validation[1] is None and no_validation[0].num_row() == n


def test_the_training_curve_is_the_metric_on_a_fixed_sample_of_the_workers_training_rows() -> None:
    rng = np.random.default_rng(11)
    n = 3_000
    frame = pd.DataFrame({"a": rng.normal(size=n).astype(np.float32), "b": rng.normal(size=n).astype(np.float32),
                          "validationIndicator": rng.random(n) < 0.2})
    frame["label"] = (frame["a"] + rng.normal(size=n) > 0.5).astype(int)
    names = {"label": "label", "validationIndicator": "validationIndicator"}
    train, valid = fit_matrices(lambda name: frame[name].to_numpy(), ["a", "b"], names, {"nthread": 1},
                                has_validation_col=True, curve_rows=500)
    sample = getattr(train, TRAIN_CURVE_SAMPLE)
    # 500 of the training rows, evenly spaced from the first to the last: the same on every fit.
    training_rows = np.flatnonzero(~frame["validationIndicator"].to_numpy())
    chosen = curve_sample(training_rows, 500)
    assert sample.num_row() == 500 and chosen[0] == training_rows[0] and chosen[-1] == training_rows[-1]
    np.testing.assert_array_equal(sample.get_label(), frame["label"].to_numpy()[chosen])

    # The worker's train function (as xgboost.spark calls it, with every training row as "training")
    # watches the sample in their place: one point per round, each the metric on the sample.
    history: dict = {}
    booster = validation_only(train_recording_times)(
        {"objective": "binary:logistic", "eval_metric": "logloss", "nthread": 1}, train, num_boost_round=6,
        evals=[(train, "training"), (valid, "validation")], evals_result=history, verbose_eval=False)
    assert list(history) == ["training", "validation"] and len(history["training"]["logloss"]) == 6
    x, y = frame[["a", "b"]].to_numpy()[chosen], frame["label"].to_numpy()[chosen]
    for rounds, measured in enumerate(history["training"]["logloss"], start=1):
        scores = booster.predict(xgboost.DMatrix(x, feature_names=["a", "b"]), iteration_range=(0, rounds))
        p = np.clip(scores, 1e-16, 1 - 1e-16)
        assert measured == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), rel=1e-5)
    # Without a sample (train_curve_rows: 0) the workers watch the validation rows only.
    plain, valid = fit_matrices(lambda name: frame[name].to_numpy(), ["a", "b"], names, {"nthread": 1},
                                has_validation_col=True)
    history = {}
    validation_only(train_recording_times)({"objective": "binary:logistic", "nthread": 1}, plain, num_boost_round=2,
                                           evals=[(plain, "training"), (valid, "validation")],
                                           evals_result=history, verbose_eval=False)
    assert list(history) == ["validation"]
