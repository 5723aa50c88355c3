"""Pre-flight: the workers' OpenMP threads are checked against what the fit gives them, in seconds."""

from __future__ import annotations

import os
import time

import pytest
from lakeboost.errors import TrainingError
from lakeboost.train import preflight
from lakeboost.train.preflight import check_worker_threads
from pyspark.sql import SparkSession


def test_workers_that_cannot_run_the_fits_threads_are_refused_naming_the_setting(spark: SparkSession) -> None:
    preflight._THREADS_CHECKED.clear()
    check_worker_threads(spark, threads=1, num_workers=2)  # local[2], two workers: one thread each
    # Timed with the Python workers started (the first check starts them, as the fit would: the fit
    # then reuses them, so the check itself costs what this second one does).
    preflight._THREADS_CHECKED.clear()
    started = time.monotonic()
    check_worker_threads(spark, threads=1, num_workers=2)
    passed = time.monotonic() - started

    too_many = (os.cpu_count() or 1) + 1  # more than any worker's processors
    started = time.monotonic()
    with pytest.raises(TrainingError, match=rf"would train with \d+ OpenMP thread\(s\), not the {too_many} .*"
                                            r"training.model.worker_threads"):
        check_worker_threads(spark, threads=too_many, num_workers=2)
    refused = time.monotonic() - started
    assert passed < 5 and refused < 5, (passed, refused)

    # Checked once per session and setting: the next fit's check runs no Spark job.
    started = time.monotonic()
    check_worker_threads(spark, threads=1, num_workers=2)
    assert time.monotonic() - started < 0.1
