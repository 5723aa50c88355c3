# Databricks notebook source
# MAGIC %md
# MAGIC # Train and tune
# MAGIC
# MAGIC Builds the point-in-time training set from the gold tables, trains a distributed XGBoost model
# MAGIC with the train job's own function (one MLflow run: params, metrics, plots, lineage; the model is
# MAGIC registered as `challenger`), shows its metrics and plots, and, when `tune_evals` > 0, runs a
# MAGIC small Hyperopt search with the tune job's function. Run the pipeline up to `features` first.
# MAGIC
# MAGIC Parameters: `env`, `overrides` (comma-separated `--set` list), `tune_evals` (trials; 0 skips
# MAGIC tuning). Outside Databricks: `LAKEBOOST_ENV`, `LAKEBOOST_OVERRIDES`, `LAKEBOOST_TUNE_EVALS`.

# COMMAND ----------

import sys
from pathlib import Path

if Path("../lib/lakeboost").is_dir():  # opened from notebooks/ in a checkout (Databricks Git folder, Jupyter)
    sys.path.insert(0, str(Path("../lib").resolve()))

import mlflow
import pandas as pd
from lakeboost.features.training_set import build_training_set
from lakeboost.io import TableCatalog
from lakeboost.notebook import display_df, display_image, notebook_context, parse_overrides, widget
from lakeboost.train.job import train_and_log
from lakeboost.tune.job import tune_step

env = widget("env", "local", "config environment")
overrides = widget("overrides", "", "--set overrides (comma-separated)")
tune_evals = int(widget("tune_evals", "0", "tuning trials (0: no tuning)"))

# COMMAND ----------

spark, config = notebook_context(env, overrides)
catalog = TableCatalog(spark, config.storage)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Training set
# MAGIC Labels known at the cutoff, joined to features observed strictly before each transaction, at
# MAGIC pinned Delta versions (recorded in the MLflow run, so the set can be rebuilt by time travel).

# COMMAND ----------

training = build_training_set(catalog, config.gold.training_set, config.require_dataset)
print(f"cutoff {training.cutoff}; versions {training.versions}")
print(f"{len(training.feature_columns)} features, categorical {list(training.categorical)}")
display_df(training.df.groupBy(training.label).count().orderBy(training.label))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Train

# COMMAND ----------

run_id, result, version = train_and_log(spark, config, training, run_name="notebook")
print(f"run {run_id}: {result.rounds} boosting rounds in {result.seconds:.0f}s, threshold {result.threshold}, "
      f"registered {config.training.tracking.registered_model} v{version}")
metrics = pd.DataFrame({split: {k: v for k, v in values.items() if isinstance(v, (int, float))}
                        for split, values in result.metrics.items()}).T
print(metrics.to_string(float_format="{:.4f}".format))

# COMMAND ----------

# MAGIC %md
# MAGIC ## ROC and precision-recall on the test split (from the run's artifacts)

# COMMAND ----------

test_plots = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="plots/test"))
for plot in ("roc.png", "pr.png"):
    display_image(str(test_plots / plot))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Tune (when `tune_evals` > 0)
# MAGIC The same config plus `training.tune.max_evals=<tune_evals>`: a batched Hyperopt search (one
# MAGIC child MLflow run per trial), then the best configuration refitted, evaluated once on test and
# MAGIC registered.

# COMMAND ----------

if tune_evals > 0:
    _, tune_config = notebook_context(env, [*parse_overrides(overrides), f"training.tune.max_evals={tune_evals}"])
    tuned = tune_step(catalog, tune_config)  # the same storage: only training.tune differs
    details = tuned.details
    print(f"strategy {details['strategy']} ({details['why']}), {details['trials']} trials, "
          f"stopped: {details['stop_reason']}")
    print(f"best valid {tune_config.training.tune.metric} {details['best_valid_metric']:.4f} "
          f"with {details['best_params']}")
    print(f"refit: model v{details['model_version']} (run {details['run_id']}), test {details['metrics'].get('test')}")
else:
    print("tune_evals is 0: no tuning search (set the widget to the number of trials to run one)")
