"""A file stream's micro-batch files read from Spark's checkpoint logs equal the files its rows
came from; outside the tested Spark, or with the borrowed paths off, there is no answer (the
caller finds the files from the rows)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lakeboost.borrowed import SWITCH_ENV, stream_log
from lakeboost.spark.fs import path_exists, read_text
from pyspark.sql import DataFrame, SparkSession


def test_each_micro_batch_files_from_the_logs_are_the_files_of_its_rows(spark: SparkSession, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    for i in range(5):
        (landing / f"part-{i}.csv").write_text(f"id\n{i}\n{i + 10}\n")
    checkpoint = str(tmp_path / "checkpoint")
    seen: list[tuple[dict[str, int] | None, dict[str, int]]] = []

    def record(batch: DataFrame, batch_id: int) -> None:
        logged = stream_log.batch_files(lambda p: read_text(spark, p), lambda p: path_exists(spark, p),
                                        checkpoint, batch_id)
        rows = batch.select("_metadata.file_path", "_metadata.file_modification_time").distinct().collect()
        seen.append((logged, {r[0]: int(r[1].timestamp() * 1000) for r in rows}))

    # Two files per batch over three batches; the file source's log compacts every 2 entries here,
    # so later batches are read from a `.compact` file.
    stream = (spark.readStream.format("csv").option("header", "true").schema("id string")
              .option("maxFilesPerTrigger", 2).load(str(landing)))
    spark.conf.set("spark.sql.streaming.fileSource.log.compactInterval", "2")
    try:
        (stream.select("*", "_metadata").writeStream.foreachBatch(record)
         .option("checkpointLocation", checkpoint).trigger(availableNow=True).start().awaitTermination())
    finally:
        spark.conf.unset("spark.sql.streaming.fileSource.log.compactInterval")
    assert sorted(p.name for p in (tmp_path / "checkpoint" / "sources" / "0").iterdir()
                  if not p.name.endswith(".crc")) == ["0", "1.compact", "2"]
    assert [len(files) for files, _ in seen] == [2, 2, 1]
    assert [logged for logged, _ in seen] == [from_rows for _, from_rows in seen]


def test_outside_the_tested_spark_or_switched_off_it_gives_no_answer(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert not stream_log.choose({"pyspark": "4.3.0"}).borrowed
    monkeypatch.setenv(SWITCH_ENV, "off")
    stream_log._choice.cache_clear()
    try:
        assert stream_log.batch_files(lambda p: "", lambda p: True, str(tmp_path), 0) is None
    finally:
        monkeypatch.delenv(SWITCH_ENV)
        stream_log._choice.cache_clear()


def test_a_log_not_in_the_expected_shape_gives_no_answer(tmp_path: Path) -> None:
    (tmp_path / "offsets").mkdir()
    (tmp_path / "offsets" / "0").write_text('v2\n{}\n{"logOffset": 0}\n')
    assert stream_log.batch_files(lambda p: Path(p).read_text(), lambda p: Path(p).exists(), str(tmp_path), 0) is None

