"""Files through Hadoop's FileSystem, so local paths, s3a://, abfss:// and dbfs:/ all work.

Hadoop's FileSystem is reached through the JVM (lakeboost/borrowed/jvm.py). Where that path is
off (see borrowed/jvm.py) the same operations go through pyarrow's file systems: local paths,
file://, s3:// (s3a:// read as s3://), gs://, hdfs://, with pyarrow's own credentials (the
environment's), and dbfs:/ through its /dbfs mount.
"""

from __future__ import annotations

import fnmatch
import glob
import os
from typing import Any

from pyspark.sql import SparkSession

from lakeboost.borrowed import jvm


def path_exists(spark: SparkSession, path: str) -> bool:
    """Whether the path exists; a glob pattern exists when it matches something."""
    if jvm.available(spark):
        return jvm.hadoop_exists(spark, path)
    filesystem, location = _arrow(path)
    if any(ch in path for ch in "*?[{"):
        if filesystem is None:
            return bool(glob.glob(location))
        directory, pattern = location.rsplit("/", 1)
        names = _arrow_names(filesystem, directory)
        return any(fnmatch.fnmatchcase(name, pattern) for name in names)
    if filesystem is None:
        return os.path.exists(location)
    import pyarrow.fs as pafs

    return filesystem.get_file_info(location).type != pafs.FileType.NotFound


def delete_path(spark: SparkSession, path: str) -> None:
    """Delete the path and everything under it, when it exists."""
    if jvm.available(spark):
        jvm.hadoop_delete(spark, path)
        return
    filesystem, location = _arrow(path)
    if filesystem is None:
        import shutil

        if os.path.isdir(location):
            shutil.rmtree(location)
        elif os.path.exists(location):
            os.remove(location)
        return
    import pyarrow.fs as pafs

    kind = filesystem.get_file_info(location).type
    if kind == pafs.FileType.Directory:
        filesystem.delete_dir(location)
    elif kind == pafs.FileType.File:
        filesystem.delete_file(location)


def read_text(spark: SparkSession, path: str) -> str:
    """A small file's whole text (UTF-8)."""
    if jvm.available(spark):
        return jvm.hadoop_read_text(spark, path)
    filesystem, location = _arrow(path)
    if filesystem is None:
        with open(location, encoding="utf-8") as file:
            return file.read()
    with filesystem.open_input_stream(location) as stream:
        return stream.read().decode("utf-8")


def write_text(spark: SparkSession, path: str, text: str) -> None:
    """Replace the small file `path` with `text` (UTF-8), creating its directory; a reader sees
    the old or the new text, never a part (written beside it, then renamed over it)."""
    if jvm.available(spark):
        jvm.hadoop_write_text(spark, path, text)
        return
    filesystem, location = _arrow(path)
    partial = f"{location}.{os.getpid()}.partial"
    if filesystem is None:
        os.makedirs(os.path.dirname(location) or ".", exist_ok=True)
        with open(partial, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(partial, location)
        return
    filesystem.create_dir(location.rsplit("/", 1)[0], recursive=True)
    with filesystem.open_output_stream(partial) as stream:
        stream.write(text.encode("utf-8"))
    filesystem.move(partial, location)


def list_names(spark: SparkSession, directory: str) -> list[str]:
    """The names of the entries directly under `directory` (none when it does not exist)."""
    if jvm.available(spark):
        return jvm.hadoop_list_names(spark, directory)
    filesystem, location = _arrow(directory)
    if filesystem is None:
        return os.listdir(location) if os.path.isdir(location) else []
    return _arrow_names(filesystem, location)


def read_first_line(spark: SparkSession, path: str) -> str:
    """A file's first line (UTF-8, without its line break; "" for an empty file): a CSV header
    without reading the rest of the file. A local file (`file:`, as Spark's readers name it) is
    read here, without Hadoop: the JVM's way is several py4j round trips a file, which for the
    150 CSV headers of a bronze batch took 0.5-0.9 s (1M rows, a loaded machine)."""
    if jvm.available(spark) and not _plain_local(path):
        return jvm.hadoop_first_line(spark, path)
    filesystem, location = _arrow(path)
    if filesystem is None:
        with open(location, encoding="utf-8", newline="") as file:
            line = file.readline()
    else:
        import io

        with filesystem.open_input_stream(location) as stream:
            line = io.TextIOWrapper(stream, encoding="utf-8", newline="").readline()
    return line.rstrip("\r\n")


def _plain_local(path: str) -> bool:
    """A `file:` path that names its file as it is (no `%` escapes, which Hadoop would decode)."""
    return path.startswith("file:") and "%" not in path


def _arrow(path: str) -> tuple[Any, str]:
    """(pyarrow file system, path in it) for `path`; (None, local path) for a local one."""
    if path.startswith("file:"):
        return None, "/" + path[len("file:"):].lstrip("/")
    if path.startswith("dbfs:/"):
        return None, "/dbfs/" + path[len("dbfs:/"):].lstrip("/")
    if "://" not in path:
        return None, path
    import pyarrow.fs as pafs

    uri = "s3://" + path[len("s3a://"):] if path.startswith("s3a://") else path
    return pafs.FileSystem.from_uri(uri)


def _arrow_names(filesystem: Any, directory: str) -> list[str]:
    import pyarrow.fs as pafs

    if filesystem.get_file_info(directory).type != pafs.FileType.Directory:
        return []
    return [info.base_name for info in filesystem.get_file_info(pafs.FileSelector(directory))]
