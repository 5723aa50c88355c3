"""Source readers: streaming file sources and JDBC. The only place sources are opened."""

from __future__ import annotations

import re
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeboost.config.model import FileSourceConfig, JdbcSourceConfig
from lakeboost.errors import SchemaDriftError, SourceError
from lakeboost.ingest.parse import CORRUPT, string_read_schema
from lakeboost.spark.diagnostics import root_cause
from lakeboost.spark.fs import path_exists

SOURCE_FILE = "_source_file_path"


def require_path(spark: SparkSession, name: str, path: str) -> None:
    if not path_exists(spark, path):
        raise SourceError(f"source {name!r}: path {path} does not exist; check sources.{name}.path "
                          "and storage.landing (run the demo generator for the demo data)")


def parquet_types(spark: SparkSession, name: str, cfg: FileSourceConfig) -> dict[str, str]:
    """Column types of all Parquet files in the source, merged; a conflict is schema drift."""
    try:
        schema = spark.read.option("mergeSchema", "true").parquet(cfg.path).schema
    except Exception as exc:  # Spark raises AnalysisException/SparkException subclasses
        message = root_cause(exc)
        if "merge" in message.lower() or "incompatible" in message.lower():
            raise SchemaDriftError(
                f"source {name!r}: files under {cfg.path} disagree on a column's type: {message}"
            ) from None
        raise SourceError(f"source {name!r}: cannot read Parquet under {cfg.path}: {message}") from None
    return {f.name: f.dataType.simpleString() for f in schema.fields}


def read_file_stream(spark: SparkSession, cfg: FileSourceConfig, types: dict[str, str]) -> DataFrame:
    """A streaming DataFrame over the source directory, with the file each row came from.

    Text formats are read as strings (typed later, so a bad value can be quarantined with a
    reason); Parquet keeps its own types and gets an always-null corrupt-record column.
    """
    reader = spark.readStream.format(cfg.format).options(**cfg.options)
    if cfg.max_files_per_trigger:
        reader = reader.option("maxFilesPerTrigger", cfg.max_files_per_trigger)
    if cfg.format == "parquet":
        ddl = ", ".join(f"`{c}` {t}" for c, t in types.items())
        stream = reader.schema(ddl).load(cfg.path).withColumn(CORRUPT, F.lit(None).cast("string"))
    else:
        reader = reader.schema(string_read_schema(types)).option("mode", "PERMISSIVE")
        reader = reader.option("columnNameOfCorruptRecord", CORRUPT)
        stream = reader.load(cfg.path)
    return stream.withColumn(SOURCE_FILE, F.col("_metadata.file_path"))


def redact_url(url: str) -> str:
    """A JDBC URL without credentials in its query string or authority."""
    url = re.sub(r"(?i)(password|pwd|user|secret)=[^&;]*", r"\1=***", url)
    return re.sub(r"//[^/@]+@", "//***@", url)


def open_jdbc(spark: SparkSession, name: str, cfg: JdbcSourceConfig) -> DataFrame:
    """The JDBC table/query as a DataFrame; connection problems surface here, before any write.

    Raises:
        SourceError: missing SQLite file, unreachable server, bad credentials, unknown table.
    """
    if cfg.url.startswith("jdbc:sqlite:"):
        db_file = cfg.url[len("jdbc:sqlite:"):].split("?")[0]
        if db_file != ":memory:" and not Path(db_file).exists():
            raise SourceError(f"source {name!r}: SQLite database file {db_file} does not exist")
    reader = (
        spark.read.format("jdbc")
        .option("url", cfg.url)
        .option("driver", cfg.resolved_driver)
        .option("fetchsize", cfg.fetch_size)
    )
    reader = reader.option("dbtable", cfg.table) if cfg.table else reader.option("query", cfg.query)
    if cfg.user:
        reader = reader.option("user", cfg.user)
    if cfg.password:
        reader = reader.option("password", cfg.password.get_secret_value())
    if cfg.partitioning:
        p = cfg.partitioning
        reader = (
            reader.option("partitionColumn", p.column)
            .option("lowerBound", p.lower_bound)
            .option("upperBound", p.upper_bound)
            .option("numPartitions", p.num_partitions)
        )
    try:
        return reader.load()
    except Exception as exc:
        raise SourceError(
            f"source {name!r}: cannot read {cfg.table or 'query'} from {redact_url(cfg.url)}: "
            f"{root_cause(exc)}"
        ) from None
