"""Training wall time of the demo model: xgboost.spark with 1 and 2 workers against native xgboost.train.

    .venv/bin/python bench/bench_train.py --rows 1000000 [--work /tmp/lakeboost-bench]
        [--workers 1,2] [--skip-as-shipped]

Reuses the lakehouse bench_features.py leaves in WORK/rowsN/lake (the gold feature table is
brought up to date first: a no-op when it is). The training set is cached and counted once, so
each fit measures training only. `train_model` runs with num_workers 1 and 2 (n_estimators and
early stopping as configured); the native baseline takes the same split, negative sampling and
frequency encodings, collects train/valid/test to the driver (a bench, not a job) and times
`xgboost.train` with the same booster parameters on one process (nthread 1 and 2). Prints one
line per phase, then the ratios spark/native. "as-shipped" is the same train_model with
xgboost.spark's own fit (it also scores the training rows every round and counts the classes with
a Spark job first), the before of lakeboost's fit. The breakdown times, on the laid-out fit
partitions, what a fit does before training: reading the cached partition, the Arrow batches
into pandas in the Python worker, and the QuantileDMatrix build (the slowest worker's seconds).
Each Spark fit prints its phases (the time before worker 0 starts boosting: job start, rows to
the Python workers, DMatrix; boosting; the model back to the driver). "native-same-rounds" trains
exactly the Spark fit's boosted rounds (no early stopping, the validation rows still evaluated each
round): the like-for-like baseline of the ratios. The layout's stages print their largest task's
input (the deal must not sort a stratum in one task), and the whole run its peak resident memory
(the bench's process tree: driver JVM and Python workers) next to the pre-flight planner's estimate.
A Spark fit that fails is reported and re-run once
with one Arrow batch per worker partition (WORKAROUND below), labelled "+1batch".
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import lakeboost.train.fit as lakeboost_fit
import pandas as pd
import xgboost as xgb
from _common import PeakMemory, bench_arguments, jvm_conf, largest_tasks  # bench/ is the script's directory
from lakeboost.borrowed import SWITCH_ENV
from lakeboost.config import LakeboostConfig, load_config
from lakeboost.config.training import TrainingConfig
from lakeboost.features.build import build_features
from lakeboost.features.splits import SPLIT, split_examples
from lakeboost.features.training_set import TrainingSet, build_training_set
from lakeboost.io.catalog import TableCatalog
from lakeboost.model.encodings import apply_encodings
from lakeboost.pipeline import run_pipeline
from lakeboost.spark import build_spark
from lakeboost.train.fit import estimator_params
from lakeboost.train.preflight import cluster_resources, estimated_bytes_per_worker
from lakeboost.train.prepare import VALID, class_counts, fit_frequency_encodings, layout_for_workers, prepare_examples
from lakeboost.train.trainer import TrainResult, train_model
from pyspark import StorageLevel
from pyspark.sql import functions as F
from sklearn.metrics import average_precision_score, roc_auc_score

# estimator keyword -> xgboost.train booster parameter (sklearn-style names xgboost.spark accepts).
RENAMED = {"learning_rate": "eta", "random_state": "seed", "reg_alpha": "alpha", "reg_lambda": "lambda",
           "min_split_loss": "gamma"}
# xgboost.spark (3.2) fails with KeyError: 'values' on any Arrow batch holding only training or only
# validation rows when features_col is a list of columns; lakeboost's worker layout leaves each
# partition sorted by (label, is_valid), so with 10,000-row batches nearly every batch is one-sided.
# One batch per partition (each holds both, layout_problems checks it) avoids that: used only as a
# labelled second attempt after the configured run failed.
WORKAROUND = {"spark.sql.execution.arrow.maxRecordsPerBatch": "0", "spark.sql.execution.arrow.maxBytesPerBatch": "1g"}
# estimator keywords that are not booster parameters (layout, columns, rounds, early stopping).
SPARK_ONLY = {"features_col", "label_col", "num_workers", "validation_indicator_col", "force_repartition",
              "n_estimators", "early_stopping_rounds", "weight_col"}


def load(rows: int, days: int | None, work: Path) -> LakeboostConfig:
    os.environ.setdefault("LAKEBOOST_PII_KEY", "bench-only-key-0123456789abcdef")
    return load_config("local", [f"storage.root={work}/lake", f"storage.landing={work}/landing",
                                 f"demo.rows={rows}", *([f"demo.days={days}"] if days else [])],
                       environ={**os.environ, "CUSTOMERS_JDBC_URL": f"jdbc:sqlite:{work}/landing/customers.db"})


def load_text() -> str:
    return "load=" + "/".join(f"{v:.2f}" for v in os.getloadavg())


def with_workers(cfg: TrainingConfig, num_workers: int, worker_data: str = "auto") -> TrainingConfig:
    return cfg.model_copy(update={"model": cfg.model.model_copy(update={"num_workers": num_workers,
                                                                        "worker_data": worker_data})})


def bench_spark(training: TrainingSet, cfg: TrainingConfig, num_workers: int,
                worker_data: str = "auto") -> tuple[str, TrainResult | None]:
    """train_model as configured; if it fails, once more with one Arrow batch per partition (see WORKAROUND)."""
    spark = training.df.sparkSession
    label = f"spark-workers={num_workers}" + ("" if worker_data == "auto" else f"-{worker_data}")
    cfg = with_workers(cfg, num_workers, worker_data)
    result = run_train_model(training, cfg, num_workers, label)
    if result is not None:
        return label, result
    saved = {k: spark.conf.get(k) for k in WORKAROUND}
    for k, v in WORKAROUND.items():
        spark.conf.set(k, v)
    try:
        return f"{label}+1batch", run_train_model(training, cfg, num_workers, f"{label}+1batch")
    finally:
        for k, v in saved.items():
            spark.conf.set(k, v)


def bench_as_shipped(training: TrainingSet, cfg: TrainingConfig, num_workers: int) -> None:
    """train_model with xgboost.spark's own fit: its Arrow stream of the rows, the training rows
    scored every round, the class count pass, spark.task.cpus threads."""
    os.environ[SWITCH_ENV] = "off"  # the stock path (lakeboost/borrowed/xgboost_spark.py)
    try:
        run_train_model(training, with_workers(cfg, num_workers, "spark"), num_workers,
                        f"as-shipped-workers={num_workers}")
    finally:
        del os.environ[SWITCH_ENV]


def fit_breakdown(training: TrainingSet, cfg: TrainingConfig, num_workers: int) -> None:
    """Seconds of each pre-training phase of a fit on the laid-out partitions (slowest worker)."""
    label, features = training.label, list(training.feature_columns)
    examples = split_examples(training, cfg)
    categorical = tuple(c for c in training.categorical if c in training.feature_columns)
    encodings = fit_frequency_encodings(examples.filter(F.col(SPLIT) == "train"), categorical)
    fitted = apply_encodings(examples, encodings).withColumn(VALID, F.col(SPLIT) == "valid") \
        .filter(F.col(SPLIT).isin("train", "valid"))
    spark = training.df.sparkSession
    spark.sparkContext.setJobGroup("layout", "worker layout and cache")
    started = time.monotonic()
    data = layout_for_workers(fitted, num_workers=num_workers, label=label, key=training.key) \
        .select(*features, label, VALID).persist(StorageLevel.MEMORY_AND_DISK)
    rows = data.count()
    print(f"{'breakdown-layout+cache':<25} rows={rows}  seconds={time.monotonic() - started:8.1f}")
    spark.sparkContext.setJobGroup("other", "")
    for line in largest_tasks(spark, "layout", min_records=rows // 100):  # the stages that move the rows
        print(f"{'breakdown-layout-stage':<25} {line}")
    per_worker = data.groupBy(F.spark_partition_id().alias("p")).count().collect()
    print(f"{'breakdown-layout-balance':<25} rows_per_worker={sorted(r['count'] for r in per_worker)}")

    def phases(build: str):
        def run(batches):
            import numpy as np  # on the worker
            started = time.monotonic()
            frames = list(batches)
            to_pandas = time.monotonic() - started
            dmatrix = 0.0
            if build == "qdm" and frames:
                frame = pd.concat(frames)
                started = time.monotonic()
                xgb.QuantileDMatrix(frame[features].to_numpy(np.float32), label=frame[label].to_numpy(), nthread=1)
                dmatrix = time.monotonic() - started
            yield pd.DataFrame({"to_pandas": [to_pandas], "dmatrix": [dmatrix]})
        return run

    for build in ("read", "qdm"):
        spark = data.sparkSession
        with lakeboost_fit.one_arrow_batch_per_partition(spark):
            started = time.monotonic()
            out = data.mapInPandas(phases(build), "to_pandas double, dmatrix double").toPandas()
        print(f"{'breakdown-' + build:<25} job_seconds={time.monotonic() - started:8.1f}  "
              f"arrow_to_pandas_max={out.to_pandas.max():.1f}  quantile_dmatrix_max={out.dmatrix.max():.1f}")
    data.unpersist()


def run_train_model(training: TrainingSet, cfg: TrainingConfig, num_workers: int, label: str) -> TrainResult | None:
    """One train_model run, printed; None when it failed."""
    started = time.monotonic()
    try:
        result = train_model(training, cfg)
    except Exception as exc:  # a bench reports the failure and goes on with the other runs
        print(f"{label:<25} FAILED after {time.monotonic() - started:.1f}s: {type(exc).__name__}: {exc}")
        return None
    total = time.monotonic() - started
    test, valid = result.metrics["test"], result.metrics["valid"]
    print(f"{label:<25} fit_seconds={result.seconds:8.1f}  rounds={result.rounds:>4}  "
          f"test_roc_auc={test['roc_auc']:.4f}  test_pr_auc={test['pr_auc']:.4f}  "
          f"valid_pr_auc={valid['pr_auc']:.4f}  train_model_seconds={total:8.1f}  {load_text()}")
    booster = result.model.get_booster()
    phases = result.fit_phases
    print(f"{'':<25} boosted_rounds={booster.num_boosted_rounds()}  best_iteration={booster.attr('best_iteration')}"
          + ("" if phases is None else f"  before_boosting={phases.before_boosting:.1f}  "
             f"boosting={phases.boosting:.1f}  after_boosting={phases.after_boosting:.1f}"
             + ("" if phases.reading is None else f"  (to_workers={phases.to_workers:.1f}  "
                f"reading_files={phases.reading:.1f}  dmatrix={phases.dmatrix:.1f})")))
    return result


def native_matrices(training: TrainingSet, cfg: TrainingConfig) -> tuple[dict[str, pd.DataFrame], float | None]:
    """train/valid/test as pandas, prepared the way train_model prepares them; and scale_pos_weight."""
    label = training.label
    examples = split_examples(training, cfg).persist()
    prepared = prepare_examples(examples, class_counts(examples, label=label), training, cfg)
    encoded, weight = prepared.encoded, prepared.weight
    columns = [F.col(c).cast("float").alias(c) for c in training.feature_columns]
    frames = {split: encoded.filter(F.col(SPLIT) == split).select(*columns, F.col(label)).toPandas()
              for split in ("train", "valid", "test")}
    examples.unpersist()
    return frames, weight


def native_params(cfg: TrainingConfig, features: list[str], label: str, weight: float | None,
                  nthread: int) -> dict[str, Any]:
    """The booster parameters of the Spark fit, as xgboost.train names them."""
    spark_params = estimator_params(cfg.model, features=features, label=label, scale_pos_weight=weight)
    params = {RENAMED.get(k, k): v for k, v in spark_params.items() if k not in SPARK_ONLY}
    params.setdefault("objective", cfg.model.objective)
    params.setdefault("tree_method", "hist")
    params["nthread"] = nthread
    return params


def bench_native(frames: dict[str, pd.DataFrame], cfg: TrainingConfig, features: list[str], target: str,
                 weight: float | None, nthread: int, *, fixed_rounds: int | None = None) -> float:
    """xgboost.train on the driver; `fixed_rounds`: exactly that many rounds, no early stopping."""
    params = native_params(cfg, features, target, weight, nthread)
    started = time.monotonic()
    dtrain = xgb.DMatrix(frames["train"][features], label=frames["train"][target], nthread=nthread)
    dvalid = xgb.DMatrix(frames["valid"][features], label=frames["valid"][target], nthread=nthread)
    dmatrix_seconds = time.monotonic() - started
    evals = [(dvalid, "valid")]
    stopping = None if fixed_rounds else cfg.model.early_stopping_rounds
    booster = xgb.train(params, dtrain, num_boost_round=fixed_rounds or cfg.model.n_estimators, evals=evals,
                        early_stopping_rounds=stopping, verbose_eval=False)
    seconds = time.monotonic() - started
    rounds = booster.best_iteration + 1 if stopping else booster.num_boosted_rounds()
    test = frames["test"]
    scores = booster.predict(xgb.DMatrix(test[features], nthread=nthread), iteration_range=(0, rounds))
    label = f"native-nthread={nthread}" + ("-same-rounds" if fixed_rounds else "")
    print(f"{label:<25} fit_seconds={seconds:8.1f}  rounds={rounds:>4}  dmatrix_seconds={dmatrix_seconds:.1f}  "
          f"test_roc_auc={roc_auc_score(test[target], scores):.4f}  "
          f"test_pr_auc={average_precision_score(test[target], scores):.4f}  "
          f"boosted_rounds={booster.num_boosted_rounds()}  {load_text()}")
    return seconds


def warm_python_workers(spark) -> None:
    """Start a Python worker per task slot with xgboost imported, as a second fit finds them: the
    first fit of a process otherwise pays the workers' start (seconds) and no fit after it does."""
    def imported(batches):
        import lakeboost.train.fit  # noqa: F401  pulls xgboost, scikit-learn, SciPy, pyarrow
        yield from batches

    slots = cluster_resources(spark).task_slots
    spark.range(slots).repartition(slots).mapInPandas(imported, "id long").count()


def extra_arguments(parser) -> None:
    parser.add_argument("--workers", default="1,2", help="the Spark fits' num_workers, comma-separated")
    parser.add_argument("--skip-as-shipped", action="store_true", help="leave out xgboost.spark's own fit")
    parser.add_argument("--skip-stream", action="store_true",
                        help="leave out lakeboost's fit on xgboost.spark's Arrow stream (worker_data=spark)")


def main() -> None:
    args = bench_arguments(__doc__ or "", extra_arguments)
    with PeakMemory() as memory:
        run(args)
    print(f"{'memory':<25} {memory.text()}  (the whole run)")


def run(args) -> None:
    config = load(args.rows, args.days, Path(args.work) / f"rows{args.rows}")
    spark = build_spark(config.spark, app_name="lakeboost-bench", extra_conf=jvm_conf(args.rows))
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")  # faster toPandas for the baseline
    started_all = time.monotonic()
    # The demo's data steps first (idempotent: a lakehouse already built adds nothing), so the
    # bench also runs on a fresh machine.
    run_pipeline(spark, config, ["generate", "ingest", "refine"])
    print(f"{'data steps':<25} seconds={time.monotonic() - started_all:8.1f}")
    summary = build_features(TableCatalog(spark, config.storage), config)
    print(f"{'features':<25} modes={ {n: d['mode'] for n, d in summary.details.items()} }  "
          f"seconds={time.monotonic() - started_all:8.1f}")

    started = time.monotonic()
    training = build_training_set(TableCatalog(spark, config.storage), config.gold.training_set,
                                  config.require_dataset)
    training.df.persist(StorageLevel.MEMORY_AND_DISK)
    examples = training.df.count()
    features, target = list(training.feature_columns), training.label
    print(f"{'training-set':<25} rows={examples:>10}  features={len(features):>3}  "
          f"seconds={time.monotonic() - started:8.1f}  cores={os.cpu_count()}  {load_text()}")

    cfg = config.training
    print(f"{'config':<25} n_estimators={cfg.model.n_estimators}  "
          f"early_stopping_rounds={cfg.model.early_stopping_rounds}  params={cfg.model.params}  "
          f"spark.task.cpus={spark.sparkContext.getConf().get('spark.task.cpus', '1')}")
    workers = [int(n) for n in args.workers.split(",")]
    started = time.monotonic()
    warm_python_workers(spark)
    print(f"{'warm-python-workers':<25} seconds={time.monotonic() - started:8.1f}  (the fits below find them started)")
    spark_results = {}
    for n in workers:
        with PeakMemory() as memory:
            spark_results[n] = bench_spark(training, cfg, n)
        result = spark_results[n][1]
        if result is None:  # refused or failed: its peak says nothing about a fit
            continue
        rows = sum(sum(c.values()) for s, c in result.split_counts.items() if s in ("train", "valid"))
        estimate = estimated_bytes_per_worker(rows, len(features), n) * n
        print(f"{'memory-workers=' + str(n):<25} {memory.text()}  planner_estimate_gib={estimate / 2**30:.2f} "
              f"(all {n} workers' training matrices: {rows} fit rows before down-sampling x {len(features)} features)")
    if not args.skip_stream:  # lakeboost's fit on xgboost.spark's Arrow stream
        bench_spark(training, cfg, max(workers), "spark")
    if not args.skip_as_shipped:
        bench_as_shipped(training, cfg, max(workers))
    fit_breakdown(training, cfg, max(workers))

    started = time.monotonic()
    frames, weight = native_matrices(training, cfg)
    print(f"{'native-prepare':<25} " + "  ".join(f"{s}={len(f)}" for s, f in frames.items())
          + f"  positives_train={int(frames['train'][target].sum())}  scale_pos_weight={weight}  "
          f"seconds={time.monotonic() - started:8.1f}")
    print(f"{'native-params':<25} {native_params(cfg, features, target, weight, 1)}")
    # Native with as many threads as each Spark fit trains with in all (workers x threads each:
    # on a local master one worker takes every slot).
    fit_threads = {n: n * (lakeboost_fit.worker_threads(
        cfg.model.worker_threads, master=spark.sparkContext.master or "",
        task_slots=cluster_resources(spark).task_slots, num_workers=n) or 1) for n in workers}
    native_seconds = {t: bench_native(frames, cfg, features, target, weight, t)
                      for t in sorted(set(fit_threads.values()))}
    same_rounds = {}
    for n, (label, result) in spark_results.items():
        if result is not None:
            rounds = result.model.get_booster().num_boosted_rounds()
            same_rounds[label] = bench_native(frames, cfg, features, target, weight, fit_threads[n],
                                              fixed_rounds=rounds)
    test = frames["test"]
    for label, result in spark_results.values():
        if result is not None:  # cross-check of lakeboost's distributed test AUC on the same rows
            scores = result.model.get_booster().predict(xgb.DMatrix(test[features]), iteration_range=(0, result.rounds))
            print(f"{label + '-sklearn':<25} test_roc_auc={roc_auc_score(test[target], scores):.4f}  "
                  f"test_pr_auc={average_precision_score(test[target], scores):.4f}  (spark model, pandas test)")

    for label, result in spark_results.values():
        seconds = result.seconds if result is not None else None
        ratios = "  ".join(f"vs_nthread={n}={seconds / s:6.2f}x" if seconds else f"vs_nthread={n}=n/a"
                           for n, s in native_seconds.items())
        if seconds and label in same_rounds:
            ratios += f"  vs_same_rounds_same_threads={seconds / same_rounds[label]:6.2f}x"
        print(f"{'ratio-' + label:<25} {ratios}")
    print(f"{'total':<25} seconds={time.monotonic() - started_all:8.1f}")
    spark.stop()


if __name__ == "__main__":
    main()
