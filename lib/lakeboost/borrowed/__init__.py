"""Borrowed internals: the only places lakeboost uses another library's private API.

`xgboost_spark.py` holds every use of xgboost.spark's internals (the fit's worker path) and
`jvm.py` every call into the JVM through py4j (Spark's status store, Hadoop's FileSystem, MLlib's
exact AUCs, Java exception chains), `stream_log.py` Spark's checkpoint logs of a file stream
(a micro-batch's files before its rows are read). Each states the versions it was tested against once, as
`TestedRange` constants; outside them, when a private attribute it needs is missing, on Spark
Connect (no JVM) or when `LAKEBOOST_BORROWED=off` is set, lakeboost takes the stock path
(xgboost.spark's own fit, public Spark APIs) and logs one line saying which path and why.
Nothing else in lakeboost touches these internals (tests/borrowed/test_fence.py greps for it).
"""

from __future__ import annotations

import functools
import logging
import os
import re
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

log = logging.getLogger(__name__)

# Set to "off" to take the stock paths everywhere (e.g. to rule the borrowed paths out of a failure).
SWITCH_ENV = "LAKEBOOST_BORROWED"
GATEWAY_LOGGER = "py4j"  # the JVM gateway's logger, quieted by logs.configure_logging


@dataclass(frozen=True)
class TestedRange:
    """Versions `low <= v < high` of `package` (major, minor) a borrowed path was tested with."""

    __test__ = False  # not a pytest class

    package: str
    low: tuple[int, int]
    high: tuple[int, int]

    def covers(self, found: str) -> bool:
        parsed = major_minor(found)
        return parsed is not None and self.low <= parsed < self.high

    def __str__(self) -> str:
        return f"{self.package} >={'.'.join(map(str, self.low))},<{'.'.join(map(str, self.high))}"


@dataclass(frozen=True)
class PathChoice:
    """Which path a fenced need takes: the borrowed one or the stock one, and why."""

    borrowed: bool
    reason: str

    @property
    def name(self) -> str:
        return "borrowed" if self.borrowed else "stock"


def major_minor(text: str) -> tuple[int, int] | None:
    """(major, minor) of a version string ('4.2.0', '3.2.0rc1', '4.2.0.dev0'), None if it has none."""
    match = re.match(r"(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


@functools.cache
def installed_version(package: str) -> str:
    """The installed distribution's version, or "unknown" (read once: guards run on every file call)."""
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def switched_off() -> bool:
    return os.environ.get(SWITCH_ENV, "").strip().lower() in ("off", "0", "false", "no", "stock")


def outside(ranges: tuple[TestedRange, ...], versions: dict[str, str] | None = None) -> str | None:
    """Why the installed (or given) versions fall outside `ranges`, or None when all are covered."""
    for tested in ranges:
        found = (versions or {}).get(tested.package) or installed_version(tested.package)
        if not tested.covers(found):
            return f"{tested.package} {found} is outside the tested range {tested}"
    return None


def announce(need: str, choice: PathChoice) -> PathChoice:
    """Log the one line saying which path `need` took and why (a warning when the versions are
    untested: the stock path is slower); returns `choice`."""
    untested = not choice.borrowed and "outside the tested range" in choice.reason
    log.log(logging.WARNING if untested else logging.INFO, "%s: %s path (%s)", need, choice.name, choice.reason)
    return choice


def is_connect_session(spark_or_frame: object) -> bool:
    """True for a Spark Connect session (or a DataFrame of one). Told by the module pyspark keeps
    its Connect classes in (`pyspark.sql.connect`): pyspark has no public "which kind" call, and
    the classic and Connect classes share a public base. `lakeboost.spark.kind` is the public face;
    this lives here so the other borrowed modules can ask without importing a higher layer."""
    session = getattr(spark_or_frame, "sparkSession", spark_or_frame)
    return type(session).__module__.startswith("pyspark.sql.connect")
