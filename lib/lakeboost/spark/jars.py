"""Resolve JVM packages (Delta, JDBC drivers) from Maven Central into a local jar cache.

Why not Spark's own `spark.jars.packages`? Its Ivy resolver trusts ~/.m2 entries that hold a
POM without the jar (left behind by Maven's dependency mediation) and then fails the whole
session; and it puts transitive copies of Hadoop/Parquet/Jackson next to Spark's own. Maven
resolves reliably; we then keep only the jars Spark does not already ship. The result is a
plain directory of jars: the same thing an air-gapped cluster passes as `spark.jars_dir`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pyspark

from lakeboost.errors import EnvironmentSetupError

log = logging.getLogger(__name__)

_VERSION_SUFFIX = re.compile(r"-\d[\w.\-]*\.jar$")


def default_cache_dir() -> Path:
    return Path(os.environ.get("LAKEBOOST_JAR_CACHE", Path.home() / ".cache" / "lakeboost" / "jars"))


def artifact_name(jar_file: str) -> str:
    """`hadoop-client-api-3.4.2.jar` -> `hadoop-client-api`."""
    return _VERSION_SUFFIX.sub("", os.path.basename(jar_file))


def spark_bundled_artifacts() -> set[str]:
    jars_dir = Path(pyspark.__file__).parent / "jars"
    return {artifact_name(p.name) for p in jars_dir.glob("*.jar")}


def jars_in(directory: str | Path) -> list[str]:
    """All jars in a directory, for `spark.jars` (air-gapped mode)."""
    path = Path(directory)
    if not path.is_dir():
        raise EnvironmentSetupError(f"spark.jars_dir {path} does not exist; copy the jars there first")
    jars = sorted(str(p) for p in path.glob("*.jar"))
    if not jars:
        raise EnvironmentSetupError(f"spark.jars_dir {path} holds no .jar files")
    return jars


def resolve_packages(coordinates: Sequence[str], cache_dir: Path | None = None) -> list[str]:
    """Return local jar paths for Maven coordinates and their runtime dependencies.

    Cached per set of coordinates; Maven runs only on first use (or after a version change).
    """
    if not coordinates:
        return []
    bundled = spark_bundled_artifacts()
    return [p for p in resolve_classpath(coordinates, cache_dir) if artifact_name(p) not in bundled]


def resolve_classpath(coordinates: Sequence[str], cache_dir: Path | None = None) -> list[str]:
    """Every jar of the coordinates and their runtime dependencies (a JVM's whole classpath, e.g.
    the Kafka broker's: none left out for being in Spark), cached like `resolve_packages`."""
    cache_root = cache_dir or default_cache_dir()
    key = hashlib.sha256("\n".join(sorted(coordinates)).encode()).hexdigest()[:16]
    target = cache_root / key
    marker = target / ".complete"
    if not marker.exists():
        _download(coordinates, target)
        marker.write_text("\n".join(sorted(coordinates)) + "\n")
    return sorted(str(p) for p in target.glob("*.jar"))


def _download(coordinates: Sequence[str], target: Path) -> None:
    mvn = shutil.which("mvn")
    if not mvn:
        raise EnvironmentSetupError(
            "Maven (`mvn`) is needed once to fetch the JVM packages "
            f"{', '.join(coordinates)}; install it (`apt-get install maven`) or set "
            "spark.jars_dir to a directory holding those jars"
        )
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / "pom.xml").write_text(_pom(coordinates))
    log.info("resolving JVM packages with Maven: %s", ", ".join(coordinates))
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(staging / "pom.xml"), "dependency:copy-dependencies",
         f"-DoutputDirectory={staging}", "-DincludeScope=runtime"],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise EnvironmentSetupError(
            f"Maven could not resolve {', '.join(coordinates)}: {' | '.join(tail)}; "
            "check the coordinates in spark.jvm_packages or use spark.jars_dir"
        )
    (staging / "pom.xml").unlink()
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)  # atomic: a half-downloaded cache is never used


def _pom(coordinates: Sequence[str]) -> str:
    deps = []
    for coordinate in coordinates:
        group, artifact, version = coordinate.split(":")
        deps.append(
            f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
            f"<version>{version}</version></dependency>"
        )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>lakeboost</groupId><artifactId>jvm-packages</artifactId><version>1</version>"
        f"<packaging>pom</packaging><dependencies>{''.join(deps)}</dependencies></project>"
    )
