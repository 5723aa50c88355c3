"""Check for a JDK Spark can run on before starting it (no "Java gateway exited" riddles)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from lakeboost.errors import EnvironmentSetupError

SUPPORTED_JAVA = (17, 21)  # Spark 4.x runs on Java 17 and 21
_INSTALL_HINT = (
    "install a JDK 17 (Debian/Ubuntu: `apt-get install openjdk-17-jdk-headless`; macOS: "
    "`brew install openjdk@17`) and put its bin/ on PATH or set JAVA_HOME"
)


def java_executable() -> str:
    """Return the java binary Spark will use: $JAVA_HOME/bin/java, else the one on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if not candidate.exists():
            raise EnvironmentSetupError(f"JAVA_HOME={java_home} has no bin/java; {_INSTALL_HINT}")
        return str(candidate)
    found = shutil.which("java")
    if not found:
        raise EnvironmentSetupError(f"no Java found (JAVA_HOME unset, no `java` on PATH); {_INSTALL_HINT}")
    return found


def java_major_version(executable: str) -> int:
    """Parse the major version from `java -version` (printed on stderr)."""
    result = subprocess.run([executable, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not match:
        raise EnvironmentSetupError(f"could not read the version of {executable}; {_INSTALL_HINT}")
    major = int(match.group(1))
    # Java 8 and older report "1.8.0_x".
    return int(match.group(2)) if major == 1 and match.group(2) else major


def ensure_java() -> str:
    """Raise EnvironmentSetupError naming what to install unless a supported JDK is present."""
    executable = java_executable()
    major = java_major_version(executable)
    if major not in SUPPORTED_JAVA:
        raise EnvironmentSetupError(
            f"{executable} is Java {major}; Spark 4 needs Java {' or '.join(map(str, SUPPORTED_JAVA))}; "
            f"{_INSTALL_HINT}"
        )
    return executable
