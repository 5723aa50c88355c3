"""The driver JVM's logging when lakeboost starts it (lakeboost.spark.session): Spark's own defaults
(log4j2-defaults.properties) at WARN, less the warnings that say nothing to act on. A session
started by spark-submit or Databricks keeps its own logging; so does a config whose
spark.driver.extraJavaOptions names a -Dlog4j2.configurationFile.

Without it a demo run printed 9 copies of ResolveWriteToStream's AQE warning (one per stream
started), 4 of local checkpoints truncating lineage, Hadoop's native-library warning, a plan
string's truncation and Spark's four lines about its default profile.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from lakeboost.spark.jars import default_cache_dir

log = logging.getLogger(__name__)

LOG4J2_PROPERTIES = """\
rootLogger.level = warn
rootLogger.appenderRef.stdout.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.jetty.name = org.sparkproject.jetty
logger.jetty.level = warn
logger.jetty2.name = org.sparkproject.jetty.util.component.AbstractLifeCycle
logger.jetty2.level = error
logger.metastore.name = org.apache.hadoop.hive.metastore.RetryingHMSHandler
logger.metastore.level = fatal
logger.metastore2.name = org.apache.hadoop.hive.metastore.ObjectStore
logger.metastore2.level = error
logger.parquet.name = org.apache.parquet.CorruptStatistics
logger.parquet.level = error
logger.parquet2.name = parquet.CorruptStatistics
logger.parquet2.level = error
# "spark.sql.adaptive.enabled is not supported in streaming DataFrames/Datasets and will be
# disabled": once per stream started (9 in a demo run); a stream never uses AQE, by design.
logger.streamaqe.name = org.apache.spark.sql.execution.streaming.runtime.ResolveWriteToStream
logger.streamaqe.level = error
# "Unable to load native-hadoop library for your platform": the builtin Java classes are used.
logger.nativehadoop.name = org.apache.hadoop.util.NativeCodeLoader
logger.nativehadoop.level = error
# "RDD n was locally checkpointed, its lineage has been truncated": lakeboost's localCheckpoint()
# calls truncate lineage on purpose (4 in a demo run).
logger.localcheckpoint.name = org.apache.spark.rdd.MapPartitionsRDD
logger.localcheckpoint.level = error
# "Truncated the string representation of a plan since it was too large": a plan's debug string.
logger.planstring.name = org.apache.spark.util.SparkStringUtils
logger.planstring.level = error
"""


def log4j_file(cache_dir: Path | None = None) -> Path:
    """The properties above as a file the JVM can read (written once per content, in the jar cache's parent)."""
    digest = hashlib.sha256(LOG4J2_PROPERTIES.encode()).hexdigest()[:12]
    target = (cache_dir or default_cache_dir().parent) / f"log4j2-{digest}.properties"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(LOG4J2_PROPERTIES)
        partial.replace(target)
    return target


def with_log4j(java_options: str, cache_dir: Path | None = None) -> str:
    """The driver's JVM options with lakeboost's log4j2 configuration, unless they name their own."""
    if "log4j2.configurationFile" in java_options:
        return java_options
    try:
        configuration = log4j_file(cache_dir)
    except OSError as exc:  # a read-only home: Spark's own defaults, the warnings and all
        log.info("JVM logging: Spark's defaults (could not write lakeboost's log4j2 file: %s)", exc)
        return java_options
    return f"{java_options} -Dlog4j2.configurationFile={configuration.as_uri()}".strip()
