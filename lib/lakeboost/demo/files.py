"""Spark output under deterministic file names: one file per key, rows in a fixed order.

Spark names its output `part-<n>-<uuid>...`; the demo promises byte-identical files with
stable names for the same seed, so each writer stages Spark's output next to the target and
moves the single part file of each key to its final name.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

log = logging.getLogger(__name__)


def _staging_dir(target: Path) -> Path:
    staging = target.parent / f"_staging_{target.name}"
    shutil.rmtree(staging, ignore_errors=True)
    return staging


def _single_part(directory: Path, suffix: str) -> Path:
    parts = sorted(directory.glob(f"part-*{suffix}"))
    if len(parts) != 1:
        # One shuffle partition holds all rows of a key, so Spark writes exactly one file.
        raise RuntimeError(f"expected one part file in {directory}, found {len(parts)}")
    return parts[0]


def write_keyed_lines(frame: DataFrame, *, order: Sequence[str], target: Path,
                      file_name: Callable[[str], str]) -> list[Path]:
    """Write column `value` as text lines, one file per distinct `file`, sorted by `order`.

    Args:
        frame: columns `file` (string key), `value` (the line) and the `order` columns.
        order: columns that fix the line order inside each file (they must be a total order).
        target: directory the files end up in (created; existing files of the same name are
            replaced).
        file_name: final file name for a key, e.g. `lambda day: f"transactions_{day}.csv"`.

    Returns:
        The written files, sorted by name.
    """
    staging = _staging_dir(target)
    (
        frame.repartition("file")
        .sortWithinPartitions("file", *order)
        .select(F.col("value").cast("string"), F.col("file").cast("string"))
        .write.mode("overwrite")
        .option("maxRecordsPerFile", 0)
        .option("compression", "none")
        .partitionBy("file")
        .text(staging.resolve().as_uri())
    )
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for key_dir in sorted(staging.glob("file=*")):
        destination = target / file_name(key_dir.name.removeprefix("file="))
        _single_part(key_dir, ".txt").replace(destination)
        written.append(destination)
    shutil.rmtree(staging)
    log.info("wrote %d files to %s", len(written), target)
    return sorted(written)


def write_single_parquet(frame: DataFrame, *, order: Sequence[str], path: Path) -> Path:
    """Write `frame` as one Parquet file at `path`, rows sorted by `order`."""
    staging = _staging_dir(path)
    (
        frame.repartition(1)
        .sortWithinPartitions(*order)
        .write.mode("overwrite")
        .option("compression", "snappy")
        .parquet(staging.resolve().as_uri())
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    _single_part(staging, ".parquet").replace(path)
    shutil.rmtree(staging)
    log.info("wrote %s", path)
    return path
