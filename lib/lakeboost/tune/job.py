"""The tune step: pick a strategy, search within budgets (parent + child MLflow runs), refit the
best configuration, evaluate it once on test and register it.

Costs: every trial's child run logs `cost`, an estimate from the task slots it held (see
TrialPricing); the parent logs `search_cost` (Spark's task metrics for the whole search, priced
like every pipeline step's cost report), `trials_cost` (the sum of the trials' estimates) and
`best_model_cost` (the same report for the refit of the best configuration).
"""

from __future__ import annotations

import logging
import math
import tempfile
import threading
from dataclasses import dataclass
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient
from pyspark.sql import DataFrame, SparkSession

from lakeboost.config.cost import CostConfig
from lakeboost.config.metrics import METRICS, metric_for
from lakeboost.config.model import LakeboostConfig
from lakeboost.config.training import TrainingConfig
from lakeboost.config.tuning import TuneConfig
from lakeboost.cost import CostMeter, allocated_memory_gb
from lakeboost.errors import TrainingError
from lakeboost.features.splits import split_examples
from lakeboost.features.training_set import TrainingSet, current_training_set
from lakeboost.io.catalog import TableCatalog
from lakeboost.logs import StepSummary
from lakeboost.metrics import plots
from lakeboost.model.tracking import use_tracking
from lakeboost.progress import Progress
from lakeboost.train.fit import DEFAULT_EVAL_METRIC, estimator_params, feature_types
from lakeboost.train.job import summary_of, train_and_log
from lakeboost.train.preflight import ClusterResources, check_barrier, cluster_resources, spark_conf
from lakeboost.train.prepare import class_counts, prepare_examples
from lakeboost.tune.evaluators import Matrices, collect_matrices, distributed_evaluator, single_node_evaluator
from lakeboost.tune.optuna_search import (
    TrialControl,
    journal_path,
    open_study,
    optuna_space,
    run_optuna_search,
    study_name,
)
from lakeboost.tune.pruning import distributed_trial_runner
from lakeboost.tune.search import SearchResult, TrialOutcome, run_search
from lakeboost.tune.space import hyperopt_space

log = logging.getLogger(__name__)
BYTES_PER_VALUE = 4


@dataclass(frozen=True)
class StrategyChoice:
    strategy: str
    reason: str
    parallelism: int


@dataclass(frozen=True)
class TrialPricing:
    """The estimated cost of one trial: what the task slots it held cost while it ran.

    Concurrent single-node trials are tasks of one Spark job (and distributed trials share the
    executors), so Spark's task metrics cannot be split by trial exactly. A trial is charged
    seconds x the cores it held (spark.task.cpus per slot; one slot for a single_node trial,
    num_workers slots for a distributed one) x cost.core_hour, plus its slots' share of the
    memory the cost report counts x cost.gb_hour. Time between trials (proposals, logging,
    data preparation) and idle slots belong to no trial: they are in `search_cost`.
    """

    cores: float
    memory_gb: float
    prices: CostConfig

    def cost(self, seconds: float) -> float:
        return seconds / 3600 * (self.cores * self.prices.core_hour + self.memory_gb * self.prices.gb_hour)


def trial_pricing(spark: SparkSession, cfg: TrainingConfig, choice: StrategyChoice, resources: ClusterResources,
                  prices: CostConfig) -> TrialPricing:
    task_cpus = int(spark_conf(spark, "spark.task.cpus", "1"))
    slots = 1 if choice.strategy == "single_node" else cfg.model.num_workers
    share = slots / max(resources.task_slots or slots, slots)
    return TrialPricing(cores=slots * task_cpus, memory_gb=allocated_memory_gb(spark) * share, prices=prices)


def tune_config(cfg: TrainingConfig) -> TuneConfig:
    """training.tune, which every caller has checked is set (tune_step raises ConfigError)."""
    assert cfg.tune is not None, "training.tune is not configured"
    return cfg.tune


def choose_strategy(cfg: TrainingConfig, *, rows: int, features: int, resources: ClusterResources) -> StrategyChoice:
    """single_node while the training matrix fits one executor comfortably, else distributed."""
    tune = tune_config(cfg)
    size_mb = rows * (features + 1) * BYTES_PER_VALUE / 2**20
    if tune.strategy != "auto":
        strategy, reason = tune.strategy, f"configured ({size_mb:.0f} MiB training matrix)"
    elif size_mb <= tune.single_node_max_mb:
        strategy = "single_node"
        reason = (f"training matrix {size_mb:.1f} MiB <= single_node_max_mb {tune.single_node_max_mb:.0f}: "
                  "many small single-node fits in parallel use the cluster better")
    else:
        strategy = "distributed"
        reason = (f"training matrix {size_mb:.1f} MiB > single_node_max_mb {tune.single_node_max_mb:.0f}: "
                  "each trial needs a distributed fit")
    # Slots unknown (over Connect, a cluster whose executors its conf does not fix): one trial at a
    # time unless training.tune.parallelism says more.
    slots = resources.task_slots or 1
    if strategy == "single_node":
        parallelism = tune.parallelism or slots
    else:
        admitted = max(1, slots // cfg.model.num_workers) if resources.task_slots else tune.parallelism or 1
        parallelism = min(tune.parallelism or admitted, admitted)
    return StrategyChoice(strategy, reason, max(1, parallelism))


def native_params(cfg: TrainingConfig, weight: float | None) -> dict[str, Any]:
    """The xgboost.train equivalent of the Spark estimator's fixed parameters."""
    spark_params = estimator_params(cfg.model, features=[], label="", scale_pos_weight=weight)
    params = {"objective": cfg.model.objective, "eval_metric": cfg.model.eval_metric or
              DEFAULT_EVAL_METRIC[cfg.model.objective], "seed": cfg.model.seed, "tree_method": "hist",
              **cfg.model.params}
    if "scale_pos_weight" in spark_params:
        params["scale_pos_weight"] = spark_params["scale_pos_weight"]
    return params


def tune_step(catalog: TableCatalog, config: LakeboostConfig) -> StepSummary:
    ts = config.gold.training_set
    assert ts is not None, "the train step requires gold.training_set (lakeboost.steps.check_steps)"
    training = current_training_set(catalog, ts, config.require_dataset)
    try:
        return tune_and_refit(catalog.spark, config, training)
    finally:
        training.df.unpersist()  # a fresh build comes back persisted; a stored set is not cached


def tune_and_refit(spark: SparkSession, config: LakeboostConfig, training: TrainingSet) -> StepSummary:
    """Search, refit the best configuration (registered), and summarise with the costs. A refit the
    cluster cannot schedule is refused before the search and its parent run start."""
    cfg = config.training
    check_barrier(cluster_resources(spark), num_workers=cfg.model.num_workers)
    use_tracking(config)
    with mlflow.start_run(run_name="tune") as parent:
        search, choice = search_hyperparameters(spark, training, cfg, prices=config.cost,
                                                study_dir=cfg.tune.study_dir if cfg.tune else None,
                                                storage_root=config.storage.root)
        best = search.best
        if best is None:
            raise TrainingError(f"every tuning trial failed; first error: {search.trials[0]['error']}")
        refit_overrides, merge = refit_plan(cfg, best, training)
        with CostMeter(spark, config.cost) as refit_meter:
            run_id, result, version = train_and_log(spark, config, training, run_name="best", nested=True,
                                                     param_overrides=refit_overrides, merge_validation=merge,
                                                     tags={"tune_parent": parent.info.run_id})
        best_model_cost = refit_meter.report.estimated_cost
        MlflowClient().log_metric(run_id, "cost", best_model_cost)
        mlflow.log_metrics({"best_valid_metric": best["metric"], "best_model_cost": best_model_cost,
                            **{f"best_test_{k}": v for k, v in result.metrics.get("test", {}).items()
                               if isinstance(v, (int, float))}})
    summary = summary_of(run_id, result, version, training)
    summary.step = "tune"
    summary.details.update({"strategy": choice.strategy, "why": choice.reason, "parallelism": choice.parallelism,
                            "trials": len(search.trials), "stop_reason": search.stop_reason,
                            "search_seconds": round(search.seconds, 1), "best_params": best["params"],
                            "best_valid_metric": best["metric"], "tune_run_id": parent.info.run_id,
                            # Unrounded: a small search's trials cost fractions of a cent.
                            "search_cost": search.cost or 0.0, "trials_cost": trials_cost(search),
                            "best_model_cost": best_model_cost, "cost_currency": config.cost.currency})
    return summary


def trials_cost(search: SearchResult) -> float:
    return sum(t.get("cost", 0.0) for t in search.trials)


def single_node_problem(training: TrainingSet, cfg: TrainingConfig, examples: DataFrame,
                        counts: dict[str, dict[int, int]]) -> tuple[Matrices, dict[str, Any]]:
    """Train/validation matrices on the driver and the fixed booster parameters of single-node
    trials, from the preparation of a distributed fit (train.prepare.prepare_examples: class
    weight, down-sampling, frequency encodings fitted on train)."""
    prepared = prepare_examples(examples, counts, training, cfg)
    features = list(training.feature_columns)
    matrices = collect_matrices(prepared.encoded, features=features, label=training.label,
                                feature_types=feature_types(features, prepared.native) if prepared.native else None)
    params = native_params(cfg, prepared.weight)
    if cfg.model.objective.startswith("multi:"):  # xgboost.train needs it; the Spark estimator infers it
        params["num_class"] = int(max(matrices.y_train.max(), matrices.y_valid.max())) + 1
    return matrices, params


def search_hyperparameters(spark: SparkSession, training: TrainingSet, cfg: TrainingConfig, *,
                           prices: CostConfig | None = None, study_dir: str | None = None,
                           storage_root: str | None = None) -> tuple[SearchResult, StrategyChoice]:
    """Run the search inside the active (parent) MLflow run; one child run per trial.

    The parent gets `search_cost`, `search_core_hours` and `trials_cost`, each child its `cost`
    (see TrialPricing); `SearchResult.cost` is the search's cost. With the optuna backend the
    study's journal is in `study_dir` (default: training.tune.study_dir, else <storage_root>/tune,
    else a new temporary directory: not resumable), tagged on the parent run and logged with it.
    """
    tune = tune_config(cfg)
    metric = metric_for(tune.metric, cfg.model.objective)
    prices = prices or CostConfig()
    parent = mlflow.active_run()
    assert parent is not None, "search_hyperparameters logs its trials under an active (parent) MLflow run"
    experiment_id = parent.info.experiment_id
    with CostMeter(spark, prices) as meter:
        examples = split_examples(training, cfg)
        counts = class_counts(examples, label=training.label)
        rows = sum(sum(counts.get(s, {}).values()) for s in ("train", "valid"))
        resources = cluster_resources(spark)
        choice = choose_strategy(cfg, rows=rows, features=len(training.feature_columns), resources=resources)
        pricing = trial_pricing(spark, cfg, choice, resources, prices)
        log.info("tuning strategy %s (parallelism %d): %s", choice.strategy, choice.parallelism, choice.reason)
        mlflow.set_tags({"strategy": choice.strategy, "strategy_reason": choice.reason})
        mlflow.log_params({"backend": tune.backend, "algo": tune.algo, "seed": tune.seed, "max_evals": tune.max_evals,
                           "startup_trials": tune.startup_trials,
                           "timeout_seconds": tune.timeout_seconds,
                           "no_improvement_trials": tune.no_improvement_trials, "parallelism": choice.parallelism,
                           "metric": f"valid_{metric}", "trial_cores": pricing.cores,
                           "cost_currency": prices.currency})
        if tune.backend == "optuna":  # before any data is prepared: a space Optuna cannot express fails here
            space = optuna_space(tune.space)
        if choice.strategy == "single_node":
            matrices, base_params = single_node_problem(training, cfg, examples, counts)
            evaluate = single_node_evaluator(spark, matrices, base_params=base_params,
                                             n_estimators=tune.trial_n_estimators,
                                             early_stopping_rounds=cfg.model.early_stopping_rounds,
                                             metric=metric)
        else:
            evaluate = distributed_evaluator(training, cfg, concurrency=choice.parallelism, metric=metric)

        better = METRICS[metric].higher_is_better
        best: list[dict[str, Any]] = []  # the best trial so far, for the progress line

        logging_lock = threading.Lock()  # optuna's trials end on their own threads

        def log_trial(trial: dict[str, Any]) -> None:
            with logging_lock:
                _log_trial(trial)

        def _log_trial(trial: dict[str, Any]) -> None:
            trial["cost"] = pricing.cost(trial["seconds"])
            value = trial["metric"]
            if value is not None and not math.isnan(value) and (
                    not best or (value > best[0]["metric"] if better else value < best[0]["metric"])):
                best[:] = [trial]
            progress.done(f"#{trial['trial']}", trial_note(trial, best[0] if best else None, metric))
            # The parent named: MLflow's active run is per thread, and optuna's trials end on theirs.
            with mlflow.start_run(run_name=f"trial-{trial['trial']:03d}", nested=True, parent_run_id=parent.info.run_id,
                                  experiment_id=experiment_id):
                mlflow.log_params({k: str(v) for k, v in trial["params"].items()})
                metrics = {"rounds": trial["rounds"], "seconds": trial["seconds"], "cost": trial["cost"]}
                if trial["metric"] is not None:
                    metrics[f"valid_{metric}"] = trial["metric"]
                mlflow.log_metrics(metrics)
                if trial["error"]:
                    mlflow.set_tag("error", trial["error"][:500])
                if trial.get("state"):
                    mlflow.set_tags({"state": trial["state"], "optuna_trial": trial["optuna_trial"]})

        if tune.backend == "optuna":
            directory = study_dir or tune.study_dir or (f"{storage_root}/tune" if storage_root
                                                        else tempfile.mkdtemp(prefix="lakeboost-optuna-"))
            name = study_name(tune, prefix="lakeboost", objective=cfg.model.objective, metric=metric,
                              data={"versions": training.versions, "config": training.config_digest,
                                    "cutoff": training.cutoff.isoformat()})
            study = open_study(tune, name=name, study_dir=directory, higher_is_better=better)
            prune = tune.pruner != "none" and choice.strategy == "distributed"
            if tune.pruner != "none" and not prune:
                log.info("training.tune.pruner %s: single-node trials are not pruned (each is one short Spark "
                         "task); pruning applies to distributed trials", tune.pruner)
            if choice.strategy == "distributed":
                run_trial = distributed_trial_runner(training, cfg, concurrency=choice.parallelism, metric=metric,
                                                     study_dir=directory, prune=prune, higher_is_better=better)
            else:
                def run_trial(params: dict[str, Any], control: TrialControl) -> TrialOutcome:
                    return evaluate([params])[0]
            journal = journal_path(directory, name)
            mlflow.set_tags({"optuna_study": name, "optuna_journal": str(journal), "pruner": tune.pruner,
                             "pruning": str(prune).lower()})
            with Progress("tune", "trial", total=tune.max_evals) as progress:
                search = run_optuna_search(run_trial, study, space, parallelism=choice.parallelism,
                                           max_evals=tune.max_evals, timeout_seconds=tune.timeout_seconds,
                                           no_improvement_trials=tune.no_improvement_trials, prune=prune,
                                           on_trial=log_trial)
            resumed = sum(1 for t in search.trials if t.get("resumed"))
            mlflow.log_metrics({"resumed_trials": resumed,
                                "pruned_trials": sum(1 for t in search.trials if t.get("state") == "pruned")})
            mlflow.log_artifact(str(journal), "optuna")
        else:
            with Progress("tune", "trial", total=tune.max_evals) as progress:
                search = run_search(evaluate, hyperopt_space(tune.space), algo=tune.algo, seed=tune.seed,
                                    batch_size=choice.parallelism, max_evals=tune.max_evals,
                                    timeout_seconds=tune.timeout_seconds,
                                    no_improvement_trials=tune.no_improvement_trials,
                                    on_trial=log_trial, higher_is_better=better,
                                    startup_trials=tune.startup_trials)
        examples.unpersist()
    search.cost = meter.report.estimated_cost
    mlflow.log_metrics({"search_cost": search.cost, "search_core_hours": meter.report.core_hours,
                        "trials_cost": trials_cost(search)})
    _log_search_plots(search, metric)
    mlflow.set_tag("stop_reason", search.stop_reason)
    return search, choice


def trial_note(trial: dict[str, Any], best: dict[str, Any] | None, metric: str) -> str:
    """A trial's progress note: its validation metric, its rounds, and the best so far."""
    if trial.get("pruned_at") is not None:
        return f"pruned after round {trial['pruned_at']}, {trial['seconds']:.1f}s"
    if trial["metric"] is None:
        return f"failed: {str(trial.get('error') or '')[:80]}"
    note = f"valid {metric} {trial['metric']:.4f}, {trial['rounds']} rounds, {trial['seconds']:.1f}s"
    if best is not None:
        note += f"; best {best['metric']:.4f} (#{best['trial']})"
    return note


def refit_plan(cfg: TrainingConfig, best: dict[str, Any], training: TrainingSet) -> tuple[dict[str, Any], bool]:
    """Parameters for the final fit and whether validation rows join the training rows."""
    if tune_config(cfg).refit == "train_early_stopping":
        return dict(best["params"]), False
    # Same rounds per row: scale the early-stopped rounds by the extra (validation) data.
    share = 1 - cfg.split.test_fraction
    train_share = share - cfg.split.valid_fraction
    rounds = max(1, math.ceil(best["rounds"] * share / train_share))
    return {**best["params"], "n_estimators": rounds}, True


def _log_search_plots(search: SearchResult, metric: str) -> None:
    values = [t["metric"] if t["metric"] is not None else float("nan") for t in search.trials]
    with tempfile.TemporaryDirectory() as tmp:
        plots.plot_series(values, tmp, name="tuning", title=f"validation {metric} per trial (best so far)")
        mlflow.log_artifacts(tmp, "plots")
