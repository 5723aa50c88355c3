"""Which kind of SparkSession lakeboost runs on, told once: classic (a JVM in this process, reached
through py4j) or Spark Connect (a gRPC client of a remote server: Databricks serverless and
standard-access compute, Databricks Connect, `SPARK_REMOTE`, Spark 4 thin clients).

On Connect there is no SparkContext, no RDD and no `_jvm`; every path that needs one asks
`is_connect` and takes its DataFrame/SQL alternative, or raises `unavailable_on_connect` with
what to use instead.
"""

from __future__ import annotations

from typing import Any

from lakeboost.borrowed import is_connect_session
from lakeboost.errors import EnvironmentSetupError


def is_connect(spark_or_frame: Any) -> bool:
    """True for a Spark Connect session (or a DataFrame of one)."""
    return is_connect_session(spark_or_frame)


def session_kind(spark_or_frame: Any) -> str:
    """"connect" or "classic", for logs and run tags."""
    return "connect" if is_connect(spark_or_frame) else "classic"


def unavailable_on_connect(what: str, instead: str) -> EnvironmentSetupError:
    """The one-line error for a feature that needs a classic session: what, and what to use instead."""
    return EnvironmentSetupError(f"{what} needs a classic Spark session (a JVM in this process); "
                                 f"this is Spark Connect. {instead}")
