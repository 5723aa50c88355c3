"""Source readers: streaming file sources and JDBC. The only place sources are opened."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lakeboost.config.model import FileSourceConfig, JdbcSourceConfig
from lakeboost.errors import SchemaDriftError, SourceError
from lakeboost.ingest.parse import CORRUPT, json_fields, string_read_schema
from lakeboost.redact import redact_url as redact_url  # bronze lineage and errors use it
from lakeboost.spark.diagnostics import root_cause
from lakeboost.spark.fs import path_exists

SOURCE_FILE = "_source_file_path"
SOURCE_FILE_MODIFIED = "_source_file_modified"


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
    reason); Parquet keeps its own types and gets an always-null corrupt-record column. JSON is
    read line by line and parsed here, so that fields the schema does not declare are kept
    (`_rescued_data`) instead of dropped by the reader.
    """
    reader_format = "text" if cfg.format == "json" else cfg.format
    reader = spark.readStream.format(reader_format)
    reader = reader.options(**cfg.options) if cfg.format != "json" else reader
    if cfg.max_files_per_trigger:
        reader = reader.option("maxFilesPerTrigger", cfg.max_files_per_trigger)
    if cfg.format == "parquet":
        ddl = ", ".join(f"`{c}` {t}" for c, t in types.items())
        stream = reader.schema(ddl).load(cfg.path).withColumn(CORRUPT, F.lit(None).cast("string"))
    elif cfg.format == "json":
        lines = reader.load(cfg.path).filter(F.trim(F.col("value")) != "")
        stream = lines.select(*json_fields(F.col("value"), types, cfg.options), "_metadata")
    else:
        reader = reader.schema(string_read_schema(types)).option("mode", "PERMISSIVE")
        reader = reader.option("columnNameOfCorruptRecord", CORRUPT)
        stream = reader.load(cfg.path)
    return stream.select("*", F.col("_metadata.file_path").alias(SOURCE_FILE),
                         F.col("_metadata.file_modification_time").alias(SOURCE_FILE_MODIFIED))


# Connect and socket timeouts are the drivers' own connection properties (Spark passes unknown
# options through to the driver), each in its own unit; the query timeout is Spark's.
_DRIVER_TIMEOUTS: dict[str, tuple[tuple[str, str, int], ...]] = {
    "org.postgresql.Driver": (("connectTimeout", "connect", 1), ("loginTimeout", "connect", 1),
                              ("socketTimeout", "socket", 1)),
    "com.mysql.cj.jdbc.Driver": (("connectTimeout", "connect", 1000), ("socketTimeout", "socket", 1000)),
    "org.mariadb.jdbc.Driver": (("connectTimeout", "connect", 1000), ("socketTimeout", "socket", 1000)),
    "com.microsoft.sqlserver.jdbc.SQLServerDriver": (("loginTimeout", "connect", 1),
                                                     ("socketTimeout", "socket", 1000)),
    "oracle.jdbc.OracleDriver": (("oracle.net.CONNECT_TIMEOUT", "connect", 1000),
                                 ("oracle.jdbc.ReadTimeout", "socket", 1000)),
}


def jdbc_timeout_options(cfg: JdbcSourceConfig) -> dict[str, str]:
    """Reader options bounding every wait on the database (`sources.<name>.timeouts`)."""
    seconds = {kind: int(getattr(cfg.timeouts, kind).total_seconds()) for kind in ("connect", "socket", "query")}
    options = {"queryTimeout": str(seconds["query"])}
    for prop, kind, scale in _DRIVER_TIMEOUTS.get(cfg.resolved_driver, ()):
        options[prop] = str(seconds[kind] * scale)
    return options


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
    reader = reader.options(**jdbc_timeout_options(cfg))
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
