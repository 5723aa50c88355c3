"""What checkpointing, a resume and the training curve cost a fit: extra wall time, side by side.

    .venv/bin/python bench/bench_resume.py --rows 1000000 [--features 40] [--rounds 100] [--every 10]
        [--repeats 2] [--work /tmp/lakeboost-bench]

A synthetic training set (`--rows` rows, `--features` float features from seeded hashes, a binary
label with a planted logit; no pipeline to run first) is split, prepared and laid out as the
trainer does, written once as the workers' files, and then fitted on local[2] (2 workers, the
demo's booster parameters, `--rounds` rounds without early stopping so every fit boosts as many)
in this order, `--repeats` times, alternating:

* base:       checkpoint_every 0, train_curve_rows 0 (the fit before this change);
* checkpoint: checkpoint_every `--every` (worker 0 saves booster + history every N rounds);
* curve:      train_curve_rows 2000 (each worker scores 2,000 of its training rows per round).

Then one checkpointed fit whose barrier task 1's Python worker is killed (SIGKILL, by pid) after
round `--kill-at`, and which resumes from the last checkpoint: its attempts, the rounds lost, its
extra seconds over the median checkpointed fit, and whether its booster equals theirs tree for
tree; and the same kill without checkpoints (the retry starts from round 0), against the base fit.
The seconds one checkpoint save costs worker 0 are timed apart (the final booster saved 10
times). Prints one line per fit (fit seconds as `fit_with_retries` measures them, the load), then
the ratios of the medians.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import bench_arguments, jvm_conf  # bench/ is the script's directory
from lakeboost.borrowed.xgboost_spark import fit_path
from lakeboost.config import load_config
from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.training import TrainingConfig
from lakeboost.features.splits import SPLIT, split_examples
from lakeboost.features.training_set import TrainingSet
from lakeboost.spark import build_spark
from lakeboost.train.checkpoint import CheckpointStore, checkpoint_root
from lakeboost.train.fit import estimator_params, fit_with_retries, worker_threads
from lakeboost.train.preflight import cluster_resources, master_of
from lakeboost.train.prepare import VALID, class_counts, layout_for_workers, prepare_examples
from lakeboost.train.trainer import _worker_data
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from xgboost.callback import TrainingCallback

DATASET = DatasetConfig.model_validate({
    "events": "silver.synthetic", "key": "txn_id", "event_time": "event_time", "date_column": "event_date",
    "label": {"kind": "value", "column": "label", "expr": "outcome", "available_at": "event_time"}})


def load() -> str:
    return "load=" + "/".join(f"{v:.2f}" for v in os.getloadavg())


def synthetic(spark: SparkSession, rows: int, features: int) -> TrainingSet:
    def uniform(seed: str) -> Any:
        return (F.abs(F.xxhash64(F.lit(seed), F.col("id"))) % 100_000) / 100_000.0

    names = [f"f{i}" for i in range(features)]
    base = spark.range(rows).select(
        F.format_string("T%08d", F.col("id")).alias("txn_id"),
        F.timestamp_seconds(F.lit(1_767_225_600) + F.col("id") * 6).alias("event_time"),
        *[uniform(name).alias(name) for name in names], uniform("noise").alias("noise"))
    logit = F.lit(-4.0) + 4.0 * F.col("f0") + 2.0 * F.col("f1") * F.col("f2") + F.col("f3")
    df = base.withColumn("label", (F.col("noise") < 1 / (1 + F.exp(-logit))).cast("int")).drop("noise")
    return TrainingSet(df, {"gold.synthetic": 0}, dt.datetime(2026, 3, 1), tuple(names), (), DATASET)


class StopForKill(TrainingCallback):
    """On barrier task 1, after `rounds` rounds of the first attempt: write the worker's pid to
    `marker` and wait to be killed."""

    def __init__(self, rounds: int, marker: str) -> None:
        super().__init__()
        self.rounds, self.marker = rounds, marker

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        from pyspark import BarrierTaskContext

        if epoch + 1 == self.rounds and BarrierTaskContext.get().partitionId() == 1:
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return False
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            time.sleep(300)
        return False


def main() -> None:
    args = bench_arguments(__doc__ or "", lambda p: [
        p.add_argument("--features", type=int, default=40), p.add_argument("--rounds", type=int, default=100),
        p.add_argument("--every", type=int, default=10), p.add_argument("--kill-at", type=int, default=55),
        p.add_argument("--repeats", type=int, default=2)])
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    print(f"machine: cores={os.cpu_count()} {load()} (shared with other sessions)", flush=True)
    config = load_config("local")
    spark = build_spark(config.spark.model_copy(update={"master": "local[2]"}), app_name="lakeboost-bench-resume",
                        extra_conf=jvm_conf(args.rows))
    cfg = TrainingConfig.model_validate({"calibration": {"method": "none"}, "model": {
        "num_workers": 2, "n_estimators": args.rounds, "early_stopping_rounds": None,
        "params": {"max_depth": 5, "learning_rate": 0.1, "subsample": 0.9, "colsample_bytree": 0.8}}})
    training = synthetic(spark, args.rows, args.features)
    started = time.monotonic()
    examples = split_examples(training, cfg).persist()
    counts = class_counts(examples, label="label")
    prepared = prepare_examples(examples, counts, training, cfg)
    encoded = prepared.encoded.withColumn(VALID, F.col(SPLIT) == "valid").filter(F.col(SPLIT).isin("train", "valid"))
    laid_out = layout_for_workers(encoded, num_workers=2, label="label", key=("txn_id",), stratify_label=True)
    features = list(training.feature_columns)
    params = estimator_params(cfg.model, features=features, label="label", scale_pos_weight=prepared.weight)
    resources = cluster_resources(spark)
    threads = worker_threads(None, master=master_of(spark), task_slots=resources.task_slots, num_workers=2)
    path = fit_path(laid_out)
    print(f"data: rows={args.rows} fit_rows={sum(sum(counts[s].values()) for s in ('train', 'valid'))} "
          f"features={args.features} rounds={args.rounds} every={args.every} threads={threads} "
          f"prepare_seconds={time.monotonic() - started:.1f}", flush=True)
    variants = {"base": (0, 0), "checkpoint": (args.every, 0), "curve": (0, 2000)}
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    dumps: dict[str, list[str]] = {}
    result: dict[str, Any] = {}
    with _worker_data(laid_out, cfg, params, merge_validation=False, files=True) as (fit_data, reader):
        assert reader is not None
        examples.unpersist()

        def fit(every: int, curve: int, extra: dict[str, Any] | None = None) -> tuple[Any, list[Any], float, Any]:
            reader.curve_rows = curve
            store = CheckpointStore(checkpoint_root(None, master=master_of(spark))) if every else None
            began = time.monotonic()
            try:
                model, phases, attempts = fit_with_retries(
                    fit_data, {**params, **(extra or {})}, objective="binary:logistic", retries=1, path=path,
                    threads=threads, worker_files=reader, checkpoints=store, checkpoint_every=every,
                    curve_rows=curve)
            finally:
                if store is not None:
                    store.remove()
            return model, attempts, time.monotonic() - began, phases

        fit(0, 0)  # warm-up: the Python workers started, xgboost imported
        for repeat in range(args.repeats):
            for name, (every, curve) in variants.items():
                model, _, took, _ = fit(every, curve)
                seconds[name].append(took)
                dumps.setdefault(name, model.get_booster().get_dump())
                history = model.training_summary.train_objective_history
                print(f"{name:<11} repeat={repeat} fit_seconds={took:6.2f} "
                      f"rounds={model.get_booster().num_boosted_rounds()} train_curve_points="
                      f"{len(next(iter(history.values()), []))} {load()}", flush=True)

        def killed(every: int) -> dict[str, Any]:
            """A fit whose barrier task 1 is killed after --kill-at rounds, retried (resumed when `every`)."""
            marker = Path(tempfile.mkdtemp()) / "stopped"
            outcome: dict[str, Any] = {}
            keys = ("model", "attempts", "seconds", "phases")
            fitting = threading.Thread(target=lambda: outcome.update(zip(keys, fit(
                every, 0, {"callbacks": [StopForKill(args.kill_at, str(marker))]}), strict=True)))
            fitting.start()
            while not (marker.exists() and marker.read_text()) and fitting.is_alive():
                time.sleep(0.05)
            os.kill(int(marker.read_text()), signal.SIGKILL)
            fitting.join()
            return outcome

        for name, every, reference in (("resume", args.every, "checkpoint"), ("retry-from-0", 0, "base")):
            outcome = killed(every)
            attempts = outcome["attempts"]
            resumed_from = attempts[-1].resumed_from
            equal = outcome["model"].get_booster().get_dump() == dumps[reference]
            print(f"{name:<11} killed_after={args.kill_at} resumed_from={resumed_from} "
                  f"rounds_lost={args.kill_at - resumed_from} attempts_seconds="
                  f"{[round(a.seconds, 2) for a in attempts]} fit_seconds={outcome['seconds']:6.2f} "
                  f"booster_equal_to_{reference}_fit={equal} {load()}", flush=True)
            print(f"            last attempt's phases: {outcome['phases']}", flush=True)
            result[name] = outcome

    # What worker 0 adds per checkpoint, without the fits' noise: the final booster saved as a fit saves it.
    booster = result["resume"]["model"].get_booster()
    history = {"validation": {"aucpr": [0.5] * args.rounds}}
    store = CheckpointStore(tempfile.mkdtemp())
    began = time.perf_counter()
    for saved in range(1, 11):
        store.save(saved, bytes(booster.save_raw("ubj")), history)
    per_save = (time.perf_counter() - began) / 10
    store.remove()
    print(f"save        booster_bytes={len(booster.save_raw('ubj'))} trees={booster.num_boosted_rounds()} "
          f"seconds_per_save={per_save:.4f} (x {args.rounds // args.every} saves per fit = "
          f"{per_save * (args.rounds // args.every):.3f} s)", flush=True)
    base, checkpoint, curve = (statistics.median(seconds[n]) for n in ("base", "checkpoint", "curve"))
    print(f"ratios (medians): checkpoint/base={checkpoint / base:.3f} ({checkpoint - base:+.2f} s)  "
          f"curve/base={curve / base:.3f} ({curve - base:+.2f} s)  "
          f"resume/checkpoint={result['resume']['seconds'] / checkpoint:.3f} "
          f"({result['resume']['seconds'] - checkpoint:+.2f} s)  retry-from-0/base="
          f"{result['retry-from-0']['seconds'] / base:.3f} ({result['retry-from-0']['seconds'] - base:+.2f} s)  "
          f"checkpoint booster == base booster: {dumps['checkpoint'] == dumps['base']} (seed_per_iteration)",
          flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
