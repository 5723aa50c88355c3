"""Tuning backends side by side on the demo, distributed trials, the same budget each: random search
(hyperopt's), Hyperopt TPE, Optuna multivariate TPE without pruning, and with median pruning.

    .venv/bin/python bench/bench_tune_backends.py --rows 100000 [--evals 16] [--work /tmp/lakeboost-bench]
        [--methods random,hyperopt-tpe,optuna-tpe,optuna-tpe-pruned] [--seed 11]

Each method is one `search_hyperparameters` call (the tune step's search: child MLflow run per
trial) with strategy distributed (each trial an xgboost.spark fit), max_evals=--evals and no other
budget, in the order given (the machine is shared: each line has the load when it ended). Printed
per method: trials completed per hour (trials / wall seconds of the call, data preparation
included; pruned trials count as trials), pruned and failed trials, the best validation metric,
and evaluations until the best so far first reaches random search's final best, within
TOLERANCE (random runs first; its own count is where it found its best). Reuses WORK/rowsN/lake as bench_tune.py does.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import mlflow
from _common import bench_arguments, bench_config, jvm_conf  # bench/ is the script's directory
from bench_tune import cached_training_set, ensure_gold, load_text, use_temporary_tracking
from lakeboost.config import LakeboostConfig
from lakeboost.config.tuning import TuneConfig
from lakeboost.features.training_set import TrainingSet
from lakeboost.spark import build_spark
from lakeboost.tune.job import search_hyperparameters
from lakeboost.tune.search import SearchResult
from pyspark import StorageLevel
from pyspark.sql import SparkSession

METHODS = {"random": {"backend": "hyperopt", "algo": "random"},
           "hyperopt-tpe": {"backend": "hyperopt", "algo": "tpe"},
           "optuna-tpe": {"backend": "optuna", "algo": "tpe", "pruner": "none"},
           "optuna-tpe-pruned": {"backend": "optuna", "algo": "tpe", "pruner": "median"}}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--evals", type=int, default=16, help="max_evals of every method")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--note", default="")
    parser.add_argument("--driver-memory", default=None,
                        help="spark.driver.memory (default the config's, 4g): on a machine short of memory a smaller "
                        "heap keeps the JVM's resident size down (xgboost's workers are Python processes)")
    parser.add_argument("--target-from", default="random",
                        help="the method whose final best is the target of evals_to_random_best (run it first). "
                        "hyperopt-tpe stands in for random when --evals <= 20: hyperopt's TPE draws its first 20 "
                        "proposals with hyperopt's random search, from the same seed")
    parser.add_argument("--sampler-evals", type=int, default=0, help="also compare the samplers alone at this budget "
                        "(single-node fits on cached matrices; 0: skip)")
    parser.add_argument("--sampler-seeds", type=int, default=3)
    parser.add_argument("--sampler-rounds", type=int, default=100)


# Two distributed fits of one configuration can differ in the 6th digit (the workers' float sums):
# reaching the target means coming within this of it.
TOLERANCE = 1e-4


def evals_to_reach(search: SearchResult, target: float) -> int | None:
    for i, value in enumerate(search.best_so_far()):
        if value == value and (value >= target - TOLERANCE if search.higher_is_better
                               else value <= target + TOLERANCE):
            return i + 1
    return None


def bench_method(spark: SparkSession, training: TrainingSet, config: LakeboostConfig, name: str, evals: int,
                 seed: int, study_dir: Path, target: float | None) -> SearchResult:
    cfg = config.training.model_copy(update={"tune": TuneConfig(
        strategy="distributed", max_evals=evals, timeout_seconds=None, no_improvement_trials=None, seed=seed,
        study_dir=str(study_dir / name), **METHODS[name])})
    started = time.monotonic()
    with mlflow.start_run(run_name=f"bench-{name}"):
        search, choice = search_hyperparameters(spark, training, cfg, prices=config.cost)
    wall = time.monotonic() - started
    best = search.best
    pruned = sum(1 for t in search.trials if t.get("state") == "pruned")
    failed = sum(1 for t in search.trials if t["metric"] is None) - pruned
    # Random search's own: the evaluation where it found its final best.
    reach = evals_to_reach(search, best["metric"] if target is None else target) if best else None
    print(f"{name:<20} trials={len(search.trials):>3}  pruned={pruned:>2}  failed={failed}  "
          f"parallelism={choice.parallelism}  wall_seconds={wall:7.1f}  "
          f"trials_per_hour={len(search.trials) / wall * 3600:6.1f}  "
          f"best_valid_pr_auc={best['metric'] if best else float('nan'):.4f}  "
          f"evals_to_random_best={reach if reach is not None else 'not-reached'}  {load_text()}")
    seconds = [t["seconds"] for t in search.trials]
    print(f"{'':<20} trial_seconds median={statistics.median(seconds):.1f} min={min(seconds):.1f} "
          f"max={max(seconds):.1f}  total={sum(seconds):.0f}  best_so_far="
          f"{[round(v, 4) for v in search.best_so_far()]}")
    if pruned:
        cut = [t for t in search.trials if t.get("state") == "pruned"]
        print(f"{'':<20} pruned_at={[t['pruned_at'] for t in cut]}  "
              f"pruned_seconds median={statistics.median(t['seconds'] for t in cut):.1f}")
    return search


def bench_samplers(training: TrainingSet, config: LakeboostConfig, args: argparse.Namespace, work: Path) -> None:
    """random, Hyperopt TPE and Optuna's multivariate TPE at --sampler-evals, --sampler-seeds seeds:
    one trial at a time, each a plain xgboost fit on the driver over the training/validation matrices
    collected once (bench_tune.py's compare: <= --sampler-rounds rounds, early stopping after 10),
    fits cached by parameters (random and Hyperopt TPE share their first 20 proposals)."""
    import threading

    from bench_tune import COMPARE_EARLY_STOPPING, evals_to_target, median_evals
    from lakeboost.features.splits import split_examples
    from lakeboost.train.prepare import class_counts
    from lakeboost.tune.evaluators import fit_single_node
    from lakeboost.tune.job import single_node_problem
    from lakeboost.tune.optuna_search import open_study, optuna_space, run_optuna_search
    from lakeboost.tune.search import TrialOutcome, run_search
    from lakeboost.tune.space import hyperopt_space

    tune = TuneConfig(backend="optuna", pruner="none")
    cfg = config.training.model_copy(update={"tune": tune})
    examples = split_examples(training, cfg).persist(StorageLevel.MEMORY_AND_DISK)
    matrices, base = single_node_problem(training, cfg, examples, class_counts(examples, label=training.label))
    examples.unpersist()
    cache: dict[tuple, TrialOutcome] = {}
    lock, fits = threading.Lock(), [0]

    def fit(params: dict) -> TrialOutcome:
        key = tuple(sorted((k, repr(v)) for k, v in params.items()))
        with lock:
            if key in cache:
                return cache[key]
        outcome = fit_single_node(matrices, {**base, **params}, args.sampler_rounds, COMPARE_EARLY_STOPPING,
                                  "pr_auc")
        with lock:
            cache[key], fits[0] = outcome, fits[0] + 1
        return outcome

    started = time.monotonic()
    curves: dict[str, list[list[float]]] = {"random": [], "hyperopt-tpe": [], "optuna-tpe": []}
    studies = Path(tempfile.mkdtemp(prefix="optuna-samplers-", dir=work))
    for seed in range(1, args.sampler_seeds + 1):
        for algo in ("random", "tpe"):
            run = run_search(lambda batch: [fit(p) for p in batch], hyperopt_space(tune.space), algo=algo, seed=seed,
                             batch_size=1, max_evals=args.sampler_evals)
            curves["random" if algo == "random" else "hyperopt-tpe"].append(run.best_so_far())
        study = open_study(tune.model_copy(update={"seed": seed}), name=f"s{seed}", study_dir=str(studies),
                           higher_is_better=True)
        run = run_optuna_search(lambda params, control: fit(params), study, optuna_space(tune.space), parallelism=1,
                                max_evals=args.sampler_evals)
        curves["optuna-tpe"].append(run.best_so_far())
    shutil.rmtree(studies, ignore_errors=True)
    print(f"{'samplers':<20} evals={args.sampler_evals}  seeds={args.sampler_seeds}  fits={fits[0]}  "
          f"rounds<={args.sampler_rounds}  train_rows={len(matrices.y_train)}  "
          f"seconds={time.monotonic() - started:.0f}  {load_text()}")
    for seed_index in range(args.sampler_seeds):
        target = curves["random"][seed_index][-1]
        counts = {name: evals_to_target(c[seed_index], target - TOLERANCE) for name, c in curves.items()}
        print(f"{'samplers-seed' + str(seed_index + 1):<20} random_{args.sampler_evals}_best={target:.4f}  "
              + "  ".join(f"{name}: best={c[seed_index][-1]:.4f} evals_to_random_best="
                          f"{counts[name] or 'not-reached'}" for name, c in curves.items()))
    for name, c in curves.items():
        counts = [evals_to_target(c[i], curves["random"][i][-1] - TOLERANCE) for i in range(args.sampler_seeds)]
        reach = [n for n in counts if n is not None]
        print(f"{'samplers-' + name:<20} median_final_best={statistics.median(x[-1] for x in c):.4f}  "
              f"evals_to_random_best median={median_evals(counts)}  reached={len(reach)}/{len(counts)}  "
              f"per_seed={[n if n is not None else 'not-reached' for n in counts]}")


def main() -> None:
    args = bench_arguments(__doc__ or "", add_arguments)
    config, work = bench_config(args)
    memory = {"spark.driver.memory": args.driver_memory} if args.driver_memory else {}
    spark = build_spark(config.spark, app_name="lakeboost-bench", extra_conf={**jvm_conf(args.rows), **memory})
    started_all = time.monotonic()
    methods = args.methods.split(",")
    print(f"{'budget':<20} rows={args.rows}  evals={args.evals} per method  methods={methods}  seed={args.seed}  "
          f"strategy=distributed")
    print(f"{'note':<20} wall times are upper bounds: the machine (2 cores) is shared with other Spark jobs"
          + (f"; {args.note}" if args.note else ""))
    ensure_gold(spark, config, work)
    config, tracking = use_temporary_tracking(config, work)
    study_dir = Path(tempfile.mkdtemp(prefix="optuna-bench-", dir=work))
    try:
        training = cached_training_set(spark, config, width=20)
        tune = TuneConfig()
        print(f"{'config':<20} trial_n_estimators={tune.trial_n_estimators}  "
              f"early_stopping_rounds={config.training.model.early_stopping_rounds}  "
              f"eval_metric={config.training.model.eval_metric or 'aucpr'}  "
              f"num_workers={config.training.model.num_workers}  "
              f"pruner median: prune_after_rounds={tune.prune_after_rounds} "
              f"prune_startup_trials={tune.prune_startup_trials}  space={list(tune.space)}")
        if args.sampler_evals:
            bench_samplers(training, config, args, work)
        target = None
        for name in [m for m in methods if m]:
            search = bench_method(spark, training, config, name, args.evals, args.seed, study_dir, target)
            if name == args.target_from and search.best:
                target = search.best["metric"]
    finally:
        shutil.rmtree(tracking, ignore_errors=True)
        shutil.rmtree(study_dir, ignore_errors=True)
    print(f"{'total':<20} seconds={time.monotonic() - started_all:8.1f}")
    spark.stop()


if __name__ == "__main__":
    main()
