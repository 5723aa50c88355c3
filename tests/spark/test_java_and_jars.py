"""JDK check and jar resolution helpers (no Spark needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lakeboost.errors import EnvironmentSetupError
from lakeboost.spark.jars import artifact_name, jars_in
from lakeboost.spark.java import ensure_java


def test_missing_java_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(EnvironmentSetupError, match=r"has no bin/java; install a JDK 17"):
        ensure_java()
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EnvironmentSetupError, match=r"no Java found .*install a JDK 17"):
        ensure_java()


def test_old_java_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "jdk8" / "bin" / "java"
    fake.parent.mkdir(parents=True)
    fake.write_text('#!/bin/sh\necho \'openjdk version "1.8.0_392"\' >&2\n')
    fake.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk8"))
    with pytest.raises(EnvironmentSetupError, match=r"is Java 8; Spark 4 needs Java 17 or 21"):
        ensure_java()


def test_artifact_name_strips_the_version() -> None:
    assert artifact_name("/x/hadoop-client-api-3.4.2.jar") == "hadoop-client-api"
    assert artifact_name("delta-spark_4.2_2.13-4.4.0.jar") == "delta-spark_4.2_2.13"


def test_jars_dir_must_hold_jars(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentSetupError, match="does not exist"):
        jars_in(tmp_path / "absent")
    with pytest.raises(EnvironmentSetupError, match="holds no .jar files"):
        jars_in(tmp_path)
    (tmp_path / "a-1.0.jar").write_text("")
    assert jars_in(tmp_path) == [str(tmp_path / "a-1.0.jar")]
