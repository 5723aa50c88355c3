"""The fit's rows as files: each worker partition's rows in its own file, read back exactly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from lakeboost.errors import TrainingError
from lakeboost.train.prepare import VALID, layout_for_workers, partition_counts
from lakeboost.train.worker_files import (
    WorkerFileReader,
    file_layout,
    files_directory,
    openmp_threads,
    placeholder,
    remove,
    write_worker_files,
)
from pyspark.sql import SparkSession
from pyspark.sql import functions as F


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
    reader = WorkerFileReader(files, {"label": "label", VALID: "validationIndicator"}, build=None)
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
