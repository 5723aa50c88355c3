"""Pruning distributed trials: each boosting round's validation metric from the workers to the
driver, and a pruned trial's Spark jobs cancelled.

The channel: xgboost.spark's fit runs in one barrier stage on the executors and returns only at the
end, so lakeboost adds an xgboost TrainingCallback (`RoundReporter`) to the trial's fit: after each
round, rank 0 appends `round value pid` to the trial's curve file in training.tune.progress_dir, a
directory the driver reads too (on a local master any local directory). The value is the booster's
validation metric (training.model.eval_metric, the one early stopping watches), already reduced
over the workers. The trial's driver thread polls the file (every POLL_SECONDS), reports each new
round to Optuna (optuna_search.TrialControl) and, when the pruner says so, cancels the trial's jobs.

Cancelling: every Spark job of a trial (its preparation, the fit's barrier stage, its evaluation)
runs under the trial's job group on classic Spark (SparkContext.setJobGroup with interruptOnCancel;
cancelJobGroup) and under its tag over Spark Connect (SparkSession.addTag; interruptTag). Spark
kills the barrier stage's tasks, and with them the Python workers running xgboost (Spark's
monitor kills a killed task's Python worker after spark.python.task.killTimeout, 2 s by default):
the slots are free for the next trial (tests/tune/test_optuna.py checks the worker's pid is gone).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from xgboost.callback import TrainingCallback

from lakeboost.config.training import TrainingConfig
from lakeboost.errors import ConfigError
from lakeboost.features.training_set import TrainingSet
from lakeboost.spark.diagnostics import root_cause
from lakeboost.spark.kind import is_connect
from lakeboost.train.fit import DEFAULT_EVAL_METRIC
from lakeboost.train.preflight import master_of
from lakeboost.tune.evaluators import distributed_trial_config
from lakeboost.tune.optuna_search import TrialControl, TrialRunner
from lakeboost.tune.search import TrialOutcome

log = logging.getLogger(__name__)
POLL_SECONDS = 0.25
# xgboost's eval metrics where higher is better (the rest: errors and losses).
HIGHER_EVAL_METRICS = ("auc", "aucpr", "map", "ndcg", "pre")


class RoundReporter(TrainingCallback):
    """On rank 0: after each boosting round, append `round value pid` to `path` (the validation
    metric, the last one when several are configured). Pickled into the fit's workers."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
        from xgboost import collective

        if collective.get_rank() != 0 or not evals_log:
            return False
        metrics = evals_log.get("validation") or evals_log[list(evals_log)[-1]]
        values = metrics[list(metrics)[-1]]
        with open(self.path, "a") as out:
            out.write(f"{epoch} {float(values[-1])!r} {os.getpid()}\n")
        return False


def eval_metric_sign(cfg: TrainingConfig, *, higher_is_better: bool) -> float:
    """+1 when the booster's eval metric goes the tuning metric's way, else -1 (the curve reported
    to Optuna is then negated, so the pruner compares it in the study's direction)."""
    name = (cfg.model.eval_metric or DEFAULT_EVAL_METRIC[cfg.model.objective]).split("@")[0]
    return 1.0 if (name in HIGHER_EVAL_METRICS) == higher_is_better else -1.0


def progress_directory(configured: str | None, *, study_dir: str, master: str) -> str:
    """Where the trials' curve files go: as configured, or under the study's directory on a local
    master; on a cluster it must be configured (the executors must reach it)."""
    if configured:
        return configured
    if master.startswith("local"):
        return str(Path(study_dir) / "curves")
    raise ConfigError(f"training.tune.pruner needs training.tune.progress_dir on a cluster (master {master!r}): a "
                      "local path the driver and every executor can read and write (/dbfs/..., /Volumes/..., NFS), "
                      "where each trial's rank-0 worker writes its per-round validation metric; or set "
                      "training.tune.pruner: none")


@contextmanager
def trial_jobs(spark: Any, tag: str) -> Iterator[None]:
    """Run this thread's Spark jobs under `tag` (classic: a job group that interrupts its tasks on
    cancel; Connect: an operation tag)."""
    if is_connect(spark):
        spark.addTag(tag)
        try:
            yield
        finally:
            spark.removeTag(tag)
        return
    context = spark.sparkContext
    context.setJobGroup(tag, "lakeboost tuning trial", interruptOnCancel=True)
    try:
        yield
    finally:
        for key in ("spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel"):
            context.setLocalProperty(key, None)


def cancel_trial_jobs(spark: Any, tag: str) -> None:
    if is_connect(spark):
        spark.interruptTag(tag)
    else:
        spark.sparkContext.cancelJobGroup(tag)


class CurveReader:
    """The rounds of a curve file not read yet (complete lines only)."""

    def __init__(self, path: str) -> None:
        self.path, self.offset = path, 0
        self.pids: set[int] = set()

    def new_rounds(self) -> list[tuple[int, float]]:
        try:
            with open(self.path, "rb") as curve:
                curve.seek(self.offset)
                data = curve.read()
        except FileNotFoundError:
            return []
        complete = data[:data.rfind(b"\n") + 1]
        self.offset += len(complete)
        rounds = []
        for line in complete.decode().splitlines():
            round_, value, pid = line.split()
            rounds.append((int(round_), float(value)))
            self.pids.add(int(pid))
        return rounds


def distributed_trial_runner(training: TrainingSet, cfg: TrainingConfig, *, concurrency: int, metric: str,
                             study_dir: str, prune: bool, higher_is_better: bool) -> TrialRunner:
    """A TrialRunner fitting each configuration with xgboost.spark (train_model) from its thread;
    with `prune`, its per-round curve goes to Optuna and a pruned trial's jobs are cancelled."""
    from lakeboost.train.trainer import train_model

    spark = training.df.sparkSession
    trial_cfg = distributed_trial_config(training, cfg, concurrency=concurrency)
    curves = progress_directory(cfg.tune.progress_dir if cfg.tune else None, study_dir=study_dir,
                                master=master_of(spark)) if prune else None
    if curves:
        Path(curves).mkdir(parents=True, exist_ok=True)
    sign = eval_metric_sign(cfg, higher_is_better=higher_is_better)

    def run(params: dict[str, Any], control: TrialControl) -> TrialOutcome:
        tag = f"lakeboost-trial-{control.trial.number}-{uuid.uuid4().hex[:8]}"
        started = time.monotonic()
        overrides = dict(params)
        finished = threading.Event()
        pruned_at: list[int | None] = [None]
        state = threading.Lock()  # a prune decision and the fit's end do not cross
        watcher = None
        if curves:
            reader = CurveReader(f"{curves}/{tag}.curve")
            overrides["callbacks"] = [RoundReporter(reader.path)]

            def watch() -> None:
                while not finished.wait(POLL_SECONDS):
                    for round_, value in reader.new_rounds():
                        if control.report(round_, sign * value):
                            with state:
                                if finished.is_set():
                                    return
                                pruned_at[0] = round_
                                log.info("trial %d pruned after round %d (validation %g): cancelling its Spark "
                                         "jobs (%s)", control.trial.number, round_, value, tag)
                                cancel_trial_jobs(spark, tag)
                            return

            watcher = threading.Thread(target=watch, name=f"{tag}-watch", daemon=True)
            watcher.start()
        try:
            with trial_jobs(spark, tag):
                result = train_model(training, trial_cfg, param_overrides=overrides, evaluate_test=False)
            with state:
                finished.set()
            result.release()
            return TrialOutcome(result.metrics["valid"][metric], result.rounds, time.monotonic() - started)
        except Exception as exc:
            with state:
                finished.set()
            if pruned_at[0] is not None:
                return TrialOutcome(None, pruned_at[0] + 1, time.monotonic() - started, pruned_at=pruned_at[0])
            return TrialOutcome(None, 0, time.monotonic() - started, root_cause(exc))
        finally:
            finished.set()
            if watcher is not None:
                watcher.join()

    return run
