"""The shared Spark Connect fixture: a real server with Delta, Python workers that import
lakeboost, and a classic session beside it in the same process."""

from __future__ import annotations

import pyspark.sql.functions as F
from lakeboost.spark.kind import is_connect
from pyspark.sql import SparkSession
from pyspark.sql.types import LongType, StringType, StructField, StructType


def test_connect_session_writes_and_merges_delta_on_the_server(connect_spark: SparkSession, tmp_path) -> None:
    assert is_connect(connect_spark)
    path = str(tmp_path / "t")
    schema = StructType([StructField("id", LongType()), StructField("v", StringType())])
    connect_spark.createDataFrame([(1, "a"), (2, "b")], schema).write.format("delta").save(path)
    connect_spark.createDataFrame([(2, "B"), (3, None)], schema).createOrReplaceTempView("updates")
    connect_spark.sql(f"MERGE INTO delta.`{path}` t USING updates s ON t.id = s.id "
                      "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *")
    rows = connect_spark.read.format("delta").load(path).orderBy("id").collect()
    assert [tuple(r) for r in rows] == [(1, "a"), (2, "B"), (3, None)]
    history = connect_spark.sql(f"DESCRIBE HISTORY delta.`{path}`").orderBy("version").collect()
    assert [r.operation for r in history] == ["WRITE", "MERGE"]


def test_the_servers_python_workers_import_lakeboost(connect_spark: SparkSession) -> None:
    @F.udf("string")
    def where_from(_):  # no type hints: Connect would try to read them as a pandas UDF's
        import lakeboost.spark.kind

        return lakeboost.spark.kind.__name__

    assert connect_spark.range(1).select(where_from("id")).first()[0] == "lakeboost.spark.kind"


def test_a_classic_test_after_a_connect_one_gets_classic_functions(spark: SparkSession) -> None:
    assert not is_connect(spark)
    assert spark.range(3).select(F.sum(F.col("id"))).first()[0] == 3
