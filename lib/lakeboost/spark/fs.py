"""Files through Hadoop's FileSystem, so local paths, s3a://, abfss:// and dbfs:/ all work."""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession


def _filesystem(spark: SparkSession, path: str) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    assert jvm is not None  # classic Spark, with a running SparkContext
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hadoop_path


def path_exists(spark: SparkSession, path: str) -> bool:
    """Whether the path exists; a glob pattern exists when it matches something."""
    fs, hadoop_path = _filesystem(spark, path)
    if any(ch in path for ch in "*?[{"):
        matches = fs.globStatus(hadoop_path)
        return matches is not None and len(matches) > 0
    return bool(fs.exists(hadoop_path))


def delete_path(spark: SparkSession, path: str) -> None:
    """Delete the path and everything under it, when it exists."""
    fs, hadoop_path = _filesystem(spark, path)
    if fs.exists(hadoop_path):
        fs.delete(hadoop_path, True)


def read_text(spark: SparkSession, path: str) -> str:
    """A small file's whole text (UTF-8)."""
    fs, hadoop_path = _filesystem(spark, path)
    stream = fs.open(hadoop_path)
    try:
        jvm = spark.sparkContext._jvm
        assert jvm is not None
        return str(jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
    finally:
        stream.close()


def list_names(spark: SparkSession, directory: str) -> list[str]:
    """The names of the entries directly under `directory` (none when it does not exist)."""
    fs, hadoop_path = _filesystem(spark, directory)
    if not fs.exists(hadoop_path):
        return []
    return [str(status.getPath().getName()) for status in fs.listStatus(hadoop_path)]


def read_first_line(spark: SparkSession, path: str) -> str:
    """A file's first line (UTF-8, without its line break; "" for an empty file): a CSV header
    without reading the rest of the file."""
    fs, hadoop_path = _filesystem(spark, path)
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(fs.open(hadoop_path), "UTF-8"))
    try:
        line = reader.readLine()
    finally:
        reader.close()
    return "" if line is None else str(line)
