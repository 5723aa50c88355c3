"""The one place a SparkSession is built: master, conf, Delta, and JVM packages from config."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

from pyspark.sql import SparkSession

from lakeboost.config.model import SparkConfig
from lakeboost.spark.jars import jars_in, resolve_packages
from lakeboost.spark.java import ensure_java
from lakeboost.spark.jvm_logging import with_log4j

log = logging.getLogger(__name__)

DRIVER_JAVA_OPTIONS = "spark.driver.extraJavaOptions"

DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def launched_by_spark_submit() -> bool:
    """True inside spark-submit (or Databricks): the JVM, master and jars already exist."""
    return "PYSPARK_GATEWAY_PORT" in os.environ or "DATABRICKS_RUNTIME_VERSION" in os.environ


def session_jars(config: SparkConfig) -> list[str]:
    """Local jar paths this config needs: an air-gapped directory, or resolved packages."""
    if config.jars_dir:
        return jars_in(config.jars_dir)
    return resolve_packages(config.jvm_packages)


def remote_url(config: SparkConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The Spark Connect server to use: `SPARK_REMOTE` in the environment, else `spark.remote` in
    the config's `spark.conf`; None for a classic session."""
    environ = os.environ if environ is None else environ
    return environ.get("SPARK_REMOTE") or config.conf.get("spark.remote") or None


def build_spark(config: SparkConfig, app_name: str | None = None,
                extra_conf: dict[str, str] | None = None) -> SparkSession:
    """Create (or return the active) SparkSession for this config: a Spark Connect client when
    `SPARK_REMOTE` or `spark.remote` names a server, else a classic session (master, jars, Delta).

    Raises:
        EnvironmentSetupError: no supported JDK, or JVM packages cannot be resolved.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    url = remote_url(config)
    if url is not None:
        return _connect_session(url, config, extra_conf)
    builder = SparkSession.builder.appName(app_name or config.app_name)
    if not launched_by_spark_submit():
        ensure_java()
        builder = builder.master(config.master)
        # Python workers must run this interpreter (its venv has pandas, pyarrow, xgboost), not
        # whatever `python3` is first on PATH when the venv is not activated.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.config("spark.pyspark.python", os.environ["PYSPARK_PYTHON"])
        jars = session_jars(config)
        if jars:
            builder = builder.config("spark.jars", ",".join(jars))
    conf = {**DELTA_CONF, **config.conf, **(extra_conf or {})}
    if not launched_by_spark_submit():
        conf[DRIVER_JAVA_OPTIONS] = with_log4j(conf.get(DRIVER_JAVA_OPTIONS, ""))
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    log.info("spark %s classic session %s on %s", spark.version, spark.sparkContext.applicationId,
             spark.sparkContext.master)
    return spark


def _connect_session(url: str, config: SparkConfig, extra_conf: dict[str, str] | None) -> SparkSession:
    """A Spark Connect client of `url`. The server owns master, jars, JVM options and the static
    SQL settings (Delta's extension and catalog among them: the server must be started with them);
    the config's runtime SQL settings are applied to this client's server-side session."""
    given = {**config.conf, **(extra_conf or {})}
    conf: dict[str, bool | float | int | str | None] = {
        key: value for key, value in given.items() if key.startswith(("spark.sql.", "spark.databricks."))}
    conf.pop("spark.remote", None)
    # pyspark's own builder: it also switches pyspark's functions to their Connect implementation
    # (SPARK_CONNECT_MODE_ENABLED) for this process, which a Connect job needs.
    spark = SparkSession.builder.remote(url).config(map=conf).getOrCreate()
    log.info("spark %s Spark Connect session %s on %s", spark.version,
             getattr(spark, "session_id", "?"), url)
    return spark
