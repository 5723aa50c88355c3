"""The JVM calls and their guard: inside the tested pyspark, through py4j; outside it (or switched
off) the public, JVM-free helpers, which give the same answers where a public API has them."""

from __future__ import annotations

import logging
import operator
from pathlib import Path

import pytest
from lakeboost.borrowed import SWITCH_ENV, jvm
from lakeboost.cost import CostMeter
from lakeboost.metrics.base import LABEL
from lakeboost.metrics.binary import exact_aucs
from lakeboost.spark import fs
from lakeboost.spark.diagnostics import root_cause
from lakeboost.train.preflight import cluster_resources
from pyspark.sql import SparkSession
from pyspark.sql import functions as F


@pytest.fixture()
def jvm_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SWITCH_ENV, "off")


def test_pyspark_outside_the_tested_range_takes_the_jvm_free_path_and_says_so(
        spark: SparkSession, caplog: pytest.LogCaptureFixture) -> None:
    assert jvm.choose(spark).borrowed  # the installed pyspark is the tested one
    with caplog.at_level(logging.INFO, logger="lakeboost.borrowed"):
        choice = jvm.choose(spark, versions={"pyspark": "4.3.1"})
        jvm.choose(spark, versions={"pyspark": "4.3.1"})  # said once per answer, not per call
    assert not choice.borrowed and choice.reason == "pyspark 4.3.1 is outside the tested range pyspark >=4.2,<4.3"
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == \
        [(logging.WARNING, f"JVM access: stock path ({choice.reason})")]


def _files(root: Path) -> None:
    (root / "log").mkdir(parents=True)
    (root / "log" / "00000.json").write_text('{"a": 1}\nsecond line\n')
    (root / "log" / "00001.json").write_text("")
    (root / "data.csv").write_text("x,y\r\n1,2\r\n")


def _answers(spark: SparkSession, root: Path) -> dict:
    return {"exists": fs.path_exists(spark, str(root / "log")), "missing": fs.path_exists(spark, str(root / "none")),
            "glob": fs.path_exists(spark, f"{root}/log/0*"), "no_glob": fs.path_exists(spark, f"{root}/log/9*"),
            "uri": fs.path_exists(spark, f"file://{root}/data.csv"),
            "names": sorted(fs.list_names(spark, str(root / "log"))), "none": fs.list_names(spark, str(root / "x")),
            "text": fs.read_text(spark, str(root / "log" / "00000.json")),
            "header": fs.read_first_line(spark, str(root / "data.csv")),
            "empty": fs.read_first_line(spark, str(root / "log" / "00001.json"))}


def test_file_helpers_answer_the_same_without_the_jvm(spark: SparkSession, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _files(tmp_path / "a")
    through_hadoop = _answers(spark, tmp_path / "a")
    fs.delete_path(spark, str(tmp_path / "a" / "log"))
    assert not (tmp_path / "a" / "log").exists()

    monkeypatch.setenv(SWITCH_ENV, "off")
    _files(tmp_path / "b")
    assert _answers(spark, tmp_path / "b") == through_hadoop
    assert through_hadoop["header"] == "x,y" and through_hadoop["empty"] == "" and through_hadoop["glob"]
    fs.delete_path(spark, f"file://{tmp_path}/b/log")
    fs.delete_path(spark, str(tmp_path / "b" / "data.csv"))
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == []


def _one_job_of_two_stages(spark: SparkSession) -> CostMeter:
    sc = spark.sparkContext
    sc.parallelize(range(10), 2).count()  # a job just before the meter must not count
    with CostMeter(spark) as meter:
        dict(sc.parallelize(range(1000), 3).map(lambda x: (x % 13, 1)).reduceByKey(operator.add, 4).collect())
    return meter


def test_without_the_jvm_the_cost_meter_counts_jobs_stages_tasks_and_reports_task_metrics_unknown(
        spark: SparkSession, monkeypatch: pytest.MonkeyPatch) -> None:
    through_store = _one_job_of_two_stages(spark).report
    monkeypatch.setenv(SWITCH_ENV, "off")
    public = _one_job_of_two_stages(spark).report

    # One job of two stages: 3 map tasks writing the shuffle, 4 reduce tasks reading it.
    assert (public.jobs, public.stages, public.tasks) == (through_store.jobs, through_store.stages,
                                                          through_store.tasks) == (1, 2, 7)
    assert through_store.task_metrics == "status store" and through_store.executor_run_seconds > 0
    assert public.task_metrics == "unknown: LAKEBOOST_BORROWED=off"
    assert public.executor_run_seconds == public.core_hours == public.shuffle_write_bytes == 0
    assert public.as_dict()["task_metrics"] == public.task_metrics


def test_exact_aucs_and_task_slots_agree_without_the_jvm(spark: SparkSession, monkeypatch: pytest.MonkeyPatch) -> None:
    scored = spark.range(2000).select(
        (F.abs(F.xxhash64("id")) % 1000 / 1000).alias("score"),
        (F.abs(F.xxhash64(F.lit("y"), "id")) % 1000 < F.abs(F.xxhash64("id")) % 1000).cast("int").alias(LABEL))
    positives = scored.filter(F.col(LABEL) == 1).count()
    through_mllib, slots = exact_aucs(scored, positives, 2000 - positives), cluster_resources(spark)
    monkeypatch.setenv(SWITCH_ENV, "off")
    public = exact_aucs(scored, positives, 2000 - positives)

    assert 0.6 < through_mllib["roc_auc"] < 1.0
    # The same areas from the public evaluator, summed in another order: equal to the last bits.
    assert public == pytest.approx(through_mllib, rel=1e-12)
    assert cluster_resources(spark) == slots and slots.task_slots == 2  # local[2]


def test_root_cause_reads_the_java_cause_and_without_the_jvm_the_python_message(
        spark: SparkSession, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Exception) as failed:
        spark.range(3).select(F.raise_error(F.lit("no such thing: boom"))).collect()
    # The innermost Java exception's message (the job's failure wraps it in several).
    assert root_cause(failed.value) == "[USER_RAISED_EXCEPTION] no such thing: boom SQLSTATE: P0001"
    assert jvm.java_causes(failed.value) and any("Exception" in c.class_names[0] for c in jvm.java_causes(failed.value))
    monkeypatch.setenv(SWITCH_ENV, "off")
    assert jvm.java_causes(failed.value) == []
    assert root_cause(failed.value) == str(failed.value).strip().splitlines()[0].strip()[:500]
    assert "no such thing: boom" in root_cause(failed.value)
