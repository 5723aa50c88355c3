"""Session factory, JDK check and JVM package resolution."""

from lakeboost.spark.session import build_spark

__all__ = ["build_spark"]
