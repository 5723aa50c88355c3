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

import pyarrow as pa
import pyarrow.parquet as pq
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


def _copy_in_fixed_row_groups(parts: Sequence[Path], path: Path, rows_per_group: int) -> None:
    """Concatenate Parquet files into one, cutting row groups every `rows_per_group` rows.

    Spark's own Parquet bytes are not reproducible (parquet-mr lists column encodings in
    hash-set order, which changes between JVMs), and where its part files split depends on
    sampling; rewriting with pyarrow in fixed-size row groups makes the bytes a function of
    the rows alone.
    """
    schema = pq.read_schema(parts[0]).remove_metadata()
    buffered: list[pa.RecordBatch] = []
    with pq.ParquetWriter(path, schema, compression="snappy") as writer:
        for part in parts:
            for batch in pq.ParquetFile(part).iter_batches(batch_size=rows_per_group):
                buffered.append(batch.cast(schema))
                while sum(b.num_rows for b in buffered) >= rows_per_group:
                    table = pa.Table.from_batches(buffered, schema=schema)
                    writer.write_table(table.slice(0, rows_per_group),
                                       row_group_size=rows_per_group)
                    buffered = table.slice(rows_per_group).to_batches()
        if buffered:
            writer.write_table(pa.Table.from_batches(buffered, schema=schema),
                               row_group_size=rows_per_group)


def write_single_parquet(frame: DataFrame, *, order: Sequence[str], path: Path,
                         rows_per_group: int = 1_000_000) -> Path:
    """Write `frame` as one Parquet file at `path`, rows sorted by `order` (a total order)."""
    staging = _staging_dir(path)
    (
        frame.repartitionByRange(*order)
        .sortWithinPartitions(*order)
        .write.mode("overwrite")
        .option("compression", "snappy")
        .parquet(staging.resolve().as_uri())
    )
    # Range partitions come out as part-00000, part-00001, ... in key order.
    parts = sorted(staging.glob("part-*.parquet"))
    path.parent.mkdir(parents=True, exist_ok=True)
    assembling = path.with_name(path.name + ".tmp")
    _copy_in_fixed_row_groups(parts, assembling, rows_per_group)
    assembling.replace(path)
    shutil.rmtree(staging)
    log.info("wrote %s", path)
    return path
