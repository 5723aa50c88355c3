"""Hyperparameter tuning on the demo: trials per hour per strategy, TPE against random search,
and the tuned model against the default one on test.

    .venv/bin/python bench/bench_tune.py --rows 1000000 [--work /tmp/lakeboost-bench]
        [--evals 8] [--distributed-evals 8] [--compare-evals 40] [--compare-seeds 5]
        [--compare-rounds 100] [--compare-train-rows 0] [--skip-refit]

Reuses the lakehouse in WORK/rowsN/lake (generating, ingesting and refining it first when
silver.transactions_enriched is missing, and building the gold features when they are missing;
an existing gold table is read as it is). The training set is cached and counted once. MLflow
tracks into a temporary directory under WORK/rowsN, removed at the end.

1. strategy-*: `search_hyperparameters` (the tune step's search: child run per trial, costs)
   with strategy single_node and then distributed, a fixed budget of max_evals and no other
   budget; trials per hour = trials / wall seconds of the whole call (data preparation
   included), loop_trials_per_hour counts only the search loop.
2. compare-*: TPE against random search on one cached problem: the single-node trials'
   train/validation matrices are collected once; each run (algorithm x seed, batch of 1,
   `--compare-evals` evaluations) fits plain xgboost on the driver (nthread 1, at most
   `--compare-rounds` rounds, early stopping after 10). Runs with the same seed share their
   first trials (hyperopt's TPE starts with random proposals drawn from the same seed), so
   evaluations are cached by parameters and each configuration is fitted once. Targets: 99% of
   the best validation score of any run, and the lower of the two algorithms' median final
   best (reached by at least half the seeds of each); printed: evaluations until a run first
   reaches the target, per seed and the median.
3. refit-*: the untuned config and the best configuration of step 1 (refit as the tune step
   does) and of step 2, each a distributed `train_model` evaluated once on the same test split.

Prints one line per measurement. The machine may be shared with other Spark jobs: wall times
are upper bounds.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from _common import bench_arguments, bench_config, jvm_conf  # bench/ is the script's directory
from bench_features import ensure_lakehouse
from lakeboost.config import LakeboostConfig
from lakeboost.config.training import TrainingConfig
from lakeboost.config.tuning import TuneConfig
from lakeboost.features.build import build_features
from lakeboost.features.splits import split_examples
from lakeboost.features.training_set import TrainingSet, build_training_set
from lakeboost.io.catalog import TableCatalog
from lakeboost.model.tracking import use_tracking
from lakeboost.spark import build_spark
from lakeboost.train.preflight import cluster_resources
from lakeboost.train.prepare import class_counts
from lakeboost.train.trainer import TrainResult, train_model
from lakeboost.tune.evaluators import Matrices, fit_single_node
from lakeboost.tune.job import refit_plan, search_hyperparameters, single_node_problem
from lakeboost.tune.search import SearchResult, TrialOutcome, run_search
from lakeboost.tune.space import hyperopt_space
from pyspark import StorageLevel
from pyspark.sql import SparkSession

ALGOS = ("tpe", "random")
COMPARE_EARLY_STOPPING = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--evals", type=int, default=8, help="max_evals of the single_node search")
    parser.add_argument("--distributed-evals", type=int, default=None, help="max_evals of the distributed search "
                        "(default: --evals)")
    parser.add_argument("--compare-evals", type=int, default=40)
    parser.add_argument("--compare-seeds", type=int, default=5)
    parser.add_argument("--compare-rounds", type=int, default=100)
    parser.add_argument("--compare-train-rows", type=int, default=0,
                        help="fit the TPE/random comparison on a seeded random N of the training rows (0: all)")
    parser.add_argument("--note", default="", help="printed in the header (e.g. why a budget was reduced)")
    parser.add_argument("--seed", type=int, default=11, help="the searches' seed (step 1)")
    parser.add_argument("--skip-refit", action="store_true")


def load_text() -> str:
    return "load=" + "/".join(f"{v:.2f}" for v in os.getloadavg())


def with_tune(cfg: TrainingConfig, **tune: Any) -> TrainingConfig:
    return cfg.model_copy(update={"tune": TuneConfig(**tune)})


def cached_training_set(spark: SparkSession, config: LakeboostConfig, *, width: int) -> TrainingSet:
    """The gold training set, built, kept in memory and counted once; one line says its size,
    how long it took, the cluster's slots and the load."""
    started = time.monotonic()
    training = build_training_set(TableCatalog(spark, config.storage), config.gold.training_set,
                                  config.require_dataset)
    training.df.persist(StorageLevel.MEMORY_AND_DISK)
    examples = training.df.count()
    resources = cluster_resources(spark)
    print(f"{'training-set':<{width}} rows={examples:>10}  features={len(training.feature_columns):>3}  "
          f"seconds={time.monotonic() - started:8.1f}  cores={os.cpu_count()}  task_slots={resources.task_slots}  "
          f"{load_text()}")
    return training


def ensure_gold(spark: SparkSession, config: LakeboostConfig, work: Path) -> None:
    ensure_lakehouse(spark, config, work)
    if (work / "lake" / "gold" / "transaction_features").exists():
        return
    started = time.monotonic()
    build_features(TableCatalog(spark, config.storage), config)
    print(f"{'features':<25} seconds={time.monotonic() - started:8.1f}  (gold was missing)")


def use_temporary_tracking(config: LakeboostConfig, work: Path) -> tuple[LakeboostConfig, Path]:
    """Point training.tracking at a SQLite store (and artifacts) in a new directory under WORK."""
    tracking = Path(tempfile.mkdtemp(prefix="mlflow-bench-tune-", dir=work))
    uri = f"sqlite:///{tracking}/mlflow.db"
    training = config.training.model_copy(update={"tracking": config.training.tracking.model_copy(
        update={"tracking_uri": uri, "experiment": "bench-tune"})})
    config = config.model_copy(update={"training": training})
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment("bench-tune", artifact_location=(tracking / "artifacts").as_uri())
    use_tracking(config)  # finds the experiment just created
    return config, tracking


# --- 1. trials per hour per strategy ---------------------------------------------------------

def bench_strategy(spark: SparkSession, training: TrainingSet, config: LakeboostConfig, strategy: str,
                   evals: int, seed: int) -> SearchResult:
    cfg = with_tune(config.training, strategy=strategy, max_evals=evals, timeout_seconds=None,
                    no_improvement_trials=None, seed=seed)
    started = time.monotonic()
    with mlflow.start_run(run_name=f"bench-{strategy}"):
        search, choice = search_hyperparameters(spark, training, cfg, prices=config.cost)
    wall = time.monotonic() - started
    scored = [t for t in search.trials if t["metric"] is not None]
    best = search.best
    print(f"{'strategy-' + strategy:<25} trials={len(search.trials):>3}  failed={len(search.trials) - len(scored)}  "
          f"parallelism={choice.parallelism}  wall_seconds={wall:8.1f}  loop_seconds={search.seconds:8.1f}  "
          f"trials_per_hour={len(search.trials) / wall * 3600:7.1f}  "
          f"loop_trials_per_hour={len(search.trials) / search.seconds * 3600:7.1f}  "
          f"best_valid_pr_auc={best['metric'] if best else float('nan'):.4f}  {load_text()}")
    seconds = [t["seconds"] for t in search.trials]
    rounds = [t["rounds"] for t in search.trials]
    print(f"{'':<25} trial_seconds median={statistics.median(seconds):.1f} min={min(seconds):.1f} "
          f"max={max(seconds):.1f}  rounds median={statistics.median(rounds):.0f}  "
          f"search_cost={search.cost or 0.0:.5f}  trials_cost={sum(t['cost'] for t in search.trials):.5f} "
          f"{config.cost.currency}  stop={search.stop_reason!r}")
    if best:
        print(f"{'':<25} best_params={best['params']}  best_rounds={best['rounds']}")
    return search


# --- 2. TPE against random search --------------------------------------------------------------

def sample_train_rows(m: Matrices, rows: int) -> Matrices:
    """A seeded random `rows` of the training rows (validation untouched); all when rows is 0."""
    if not rows or rows >= len(m.y_train):
        return m
    keep = np.sort(np.random.default_rng(0).choice(len(m.y_train), size=rows, replace=False))
    return Matrices(m.x_train[keep], m.y_train[keep], m.x_valid, m.y_valid, m.features)


def evals_to_target(curve: list[float], target: float) -> int | None:
    """1-based number of evaluations until the best so far first reaches target."""
    return next((i + 1 for i, v in enumerate(curve) if not math.isnan(v) and v >= target), None)


def median_evals(counts: list[int | None]) -> str:
    """The median, 'not reached' counting as more evaluations than any run made."""
    middle = statistics.median(math.inf if c is None else c for c in counts)
    return "not-reached" if math.isinf(middle) else f"{middle:g}"


def bench_compare(spark: SparkSession, training: TrainingSet, config: LakeboostConfig,
                  args: argparse.Namespace) -> dict[str, Any] | None:
    cfg = with_tune(config.training)
    started = time.monotonic()
    examples = split_examples(training, cfg).persist(StorageLevel.MEMORY_AND_DISK)
    matrices, base_params = single_node_problem(training, cfg, examples, class_counts(examples, label=training.label))
    examples.unpersist()
    matrices = sample_train_rows(matrices, args.compare_train_rows)
    print(f"{'compare-prepare':<25} train_rows={len(matrices.y_train)}  valid_rows={len(matrices.y_valid)}  "
          f"features={len(matrices.features)}  positives_train={int(matrices.y_train.sum())}  "
          f"seconds={time.monotonic() - started:8.1f}")

    assert cfg.tune is not None
    space = hyperopt_space(cfg.tune.space)
    cache: dict[tuple, TrialOutcome] = {}
    lock = threading.Lock()
    fits = [0]

    def evaluate(batch):
        outcomes = []
        for params in batch:
            key = tuple(sorted((k, repr(v)) for k, v in params.items()))
            with lock:
                cached = cache.get(key)
            if cached is None:
                cached = fit_single_node(matrices, {**base_params, **params}, args.compare_rounds,
                                         COMPARE_EARLY_STOPPING, "pr_auc")
                with lock:
                    cache[key] = cached
                    fits[0] += 1
            outcomes.append(cached)
        return outcomes

    def one_seed(seed: int) -> dict[str, SearchResult]:
        # random first: TPE's start-up proposals are the same points, found in the cache.
        return {algo: run_search(evaluate, space, algo=algo, seed=seed, batch_size=1, max_evals=args.compare_evals)
                for algo in reversed(ALGOS)}

    started = time.monotonic()
    seeds = list(range(1, args.compare_seeds + 1))
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="compare") as pool:  # xgboost releases the GIL
        runs = dict(zip(seeds, pool.map(one_seed, seeds), strict=True))
    seconds = time.monotonic() - started
    shared = [next((i for i, (a, b) in enumerate(zip(r["tpe"].trials, r["random"].trials, strict=True))
                    if a["params"] != b["params"]), args.compare_evals) for r in runs.values()]
    print(f"{'compare-runs':<25} runs={len(seeds) * len(ALGOS)}  evals_per_run={args.compare_evals}  "
          f"fits={fits[0]}  tpe_random_shared_first_trials={shared}  rounds<={args.compare_rounds}  "
          f"seconds={seconds:8.1f}  seconds_per_fit={seconds * 2 / max(fits[0], 1):.2f} (2 threads)  {load_text()}")

    curves = {algo: {seed: runs[seed][algo].best_so_far() for seed in seeds} for algo in ALGOS}
    best_any = max(c[-1] for per_seed in curves.values() for c in per_seed.values())
    medians = {algo: statistics.median(c[-1] for c in curves[algo].values()) for algo in ALGOS}
    for algo in ALGOS:
        finals = [curves[algo][s][-1] for s in seeds]
        at = {n: statistics.median(curves[algo][s][min(n, args.compare_evals) - 1] for s in seeds)
              for n in (10, 20, args.compare_evals)}
        print(f"{'compare-' + algo:<25} final_best per seed={[round(v, 4) for v in finals]}  "
              f"median best after " + " ".join(f"{n}={v:.4f}" for n, v in at.items()))
    targets = {"99pct_of_best": 0.99 * best_any, "min_median_final": min(medians.values())}
    for name, target in targets.items():
        for algo in ALGOS:
            counts = [evals_to_target(curves[algo][s], target) for s in seeds]
            shown = [c if c is not None else "not-reached" for c in counts]
            reached = sum(c is not None for c in counts)
            print(f"{'target-' + name:<25} target={target:.4f}  {algo:<6} evals_to_target median="
                  f"{median_evals(counts):>11}  reached={reached}/{len(seeds)}  per_seed={shown}")
    best_run = max((r[algo] for r in runs.values() for algo in ALGOS), key=lambda r: r.best["metric"])
    return best_run.best


# --- 3. tuned against default on test ----------------------------------------------------------

def refit(training: TrainingSet, cfg: TrainingConfig, label: str, overrides: dict[str, Any] | None = None,
          merge: bool = False) -> TrainResult | None:
    started = time.monotonic()
    try:
        result = train_model(training, cfg, param_overrides=overrides, merge_validation=merge)
    except Exception as exc:  # a bench reports the failure and goes on
        print(f"{label:<25} FAILED after {time.monotonic() - started:.1f}s: {type(exc).__name__}: {exc}")
        return None
    test, valid = result.metrics["test"], result.metrics["valid"]
    print(f"{label:<25} test_pr_auc={test['pr_auc']:.4f}  test_roc_auc={test['roc_auc']:.4f}  "
          f"valid_pr_auc={valid['pr_auc']:.4f}  rounds={result.rounds:>4}  fit_seconds={result.seconds:7.1f}  "
          f"seconds={time.monotonic() - started:7.1f}  {load_text()}")
    return result


def bench_refit(training: TrainingSet, config: LakeboostConfig, searches: dict[str, SearchResult],
                compare_best: dict[str, Any] | None) -> None:
    cfg = with_tune(config.training)  # refit: train_early_stopping (the default)
    print(f"{'refit-config':<25} default params={cfg.model.params}  n_estimators={cfg.model.n_estimators}  "
          f"early_stopping_rounds={cfg.model.early_stopping_rounds}  num_workers={cfg.model.num_workers}")
    default = refit(training, cfg, "refit-default")
    tuned: dict[str, TrainResult | None] = {}
    bests = [(s, r.best) for s, r in searches.items() if r.best is not None]
    if bests:
        strategy, best = max(bests, key=lambda b: b[1]["metric"])
        overrides, merge = refit_plan(cfg, best, training)
        print(f"{'':<25} tuned (best of strategy-{strategy}, valid {best['metric']:.4f}): {overrides}")
        tuned["refit-tuned-search"] = refit(training, cfg, "refit-tuned-search", overrides, merge)
    if compare_best is not None:
        overrides, merge = refit_plan(cfg, compare_best, training)
        print(f"{'':<25} tuned (best of all compare runs, valid {compare_best['metric']:.4f}): {overrides}")
        tuned["refit-tuned-compare"] = refit(training, cfg, "refit-tuned-compare", overrides, merge)
    if default is None:
        return
    for label, result in tuned.items():
        if result is not None:
            d, t = default.metrics["test"], result.metrics["test"]
            print(f"{label + '-gain':<25} test_pr_auc {t['pr_auc'] - d['pr_auc']:+.4f}  "
                  f"test_roc_auc {t['roc_auc'] - d['roc_auc']:+.4f}  (tuned - default, same test split)")


def main() -> None:
    args = bench_arguments(__doc__ or "", add_arguments)
    config, work = bench_config(args)
    spark = build_spark(config.spark, app_name="lakeboost-bench", extra_conf=jvm_conf(args.rows))
    started_all = time.monotonic()
    print(f"{'budget':<25} rows={args.rows}  evals single_node={args.evals} "
          f"distributed={args.distributed_evals or args.evals}  compare: {args.compare_seeds} seeds x "
          f"{args.compare_evals} evals, rounds<={args.compare_rounds}, "
          f"train_rows={args.compare_train_rows or 'all'}  refit={'no' if args.skip_refit else 'yes'}")
    print(f"{'note':<25} wall times are upper bounds: the machine (2 cores) is shared with other Spark jobs"
          + (f"; {args.note}" if args.note else ""))
    ensure_gold(spark, config, work)
    config, tracking = use_temporary_tracking(config, work)
    try:
        training = cached_training_set(spark, config, width=25)
        tune = TuneConfig()
        print(f"{'config':<25} trial_n_estimators={tune.trial_n_estimators}  "
              f"early_stopping_rounds={config.training.model.early_stopping_rounds}  "
              f"num_workers={config.training.model.num_workers}  space={list(tune.space)}")
        searches = {"single_node": bench_strategy(spark, training, config, "single_node", args.evals, args.seed),
                    "distributed": bench_strategy(spark, training, config, "distributed",
                                                  args.distributed_evals or args.evals, args.seed)}
        compare_best = bench_compare(spark, training, config, args) if args.compare_evals else None
        if not args.skip_refit:
            bench_refit(training, config, searches, compare_best)
    finally:
        shutil.rmtree(tracking, ignore_errors=True)
    print(f"{'total':<25} seconds={time.monotonic() - started_all:8.1f}")
    spark.stop()


if __name__ == "__main__":
    main()
