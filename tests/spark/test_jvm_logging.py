"""The driver JVM's logging when lakeboost starts it: Spark's defaults less the warnings that say nothing to act on."""

from __future__ import annotations

from pathlib import Path

from lakeboost.spark.jvm_logging import with_log4j


def test_a_session_lakeboost_starts_gets_its_log4j_file_after_the_configured_options(tmp_path: Path) -> None:
    options = with_log4j("-XX:+UseParallelGC", tmp_path)
    given, flag = options.split(" ")
    assert given == "-XX:+UseParallelGC" and flag.startswith("-Dlog4j2.configurationFile=file:")
    (written,) = tmp_path.glob("log4j2-*.properties")
    text = written.read_text()
    assert "rootLogger.level = warn" in text
    assert "logger.streamaqe.name = org.apache.spark.sql.execution.streaming.runtime.ResolveWriteToStream" in text
    assert with_log4j("", tmp_path) == flag  # written once per content: the same file again


def test_a_config_naming_its_own_log4j_file_keeps_it(tmp_path: Path) -> None:
    mine = "-Dlog4j2.configurationFile=file:/etc/spark/log4j2.properties"
    assert with_log4j(mine, tmp_path) == mine and not list(tmp_path.iterdir())
