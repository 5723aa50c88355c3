# Databricks notebook source
# MAGIC %md
# MAGIC # Score
# MAGIC
# MAGIC Batch scoring with the score step (`lakeboost run score`): the registered model under `model` (an
# MAGIC alias such as `champion`, or a version number) scores gold features through the same as-of joins and
# MAGIC encodings as training, upserting `scoring.predictions_table` (the demo's `gold.predictions`;
# MAGIC re-scoring replaces, never duplicates).
# MAGIC
# MAGIC Parameters: `env`, `overrides` (comma-separated `--set` list), and the score step's options
# MAGIC as widgets (`lakeboost.notebook.step_widgets`): `model`, `date` (comma-separated `YYYY-MM-DD`;
# MAGIC empty: the latest date). Outside Databricks: `LAKEBOOST_ENV`, `LAKEBOOST_OVERRIDES`,
# MAGIC `LAKEBOOST_MODEL`, `LAKEBOOST_DATE`.

# COMMAND ----------

import sys
from pathlib import Path

if Path("../lib/lakeboost").is_dir():  # opened from notebooks/ in a checkout (Databricks Git folder, Jupyter)
    sys.path.insert(0, str(Path("../lib").resolve()))

import pandas as pd
from lakeboost.io import TableCatalog
from lakeboost.model import use_tracking
from lakeboost.model.registry import CHALLENGER, CHAMPION, champion_history, current_alias
from lakeboost.notebook import display_df, notebook_context, step_widgets, widget
from lakeboost.steps import get_step
from pyspark.sql import functions as F

env = widget("env", "local", "config environment")
overrides = widget("overrides", "", "--set overrides (comma-separated)")
options = step_widgets("score")  # ScoreOptions: `model` and `date`, as `lakeboost run score` takes them

# COMMAND ----------

spark, config = notebook_context(env, overrides)
catalog = TableCatalog(spark, config.storage)
use_tracking(config)
model_name = config.training.tracking.registered_model

# COMMAND ----------

# MAGIC %md
# MAGIC ## Registry aliases

# COMMAND ----------

aliases = pd.DataFrame([{"model": model_name, "alias": alias, "version": current_alias(model_name, alias)}
                        for alias in (CHAMPION, CHALLENGER)])
print(aliases.to_string(index=False))
print(f"champion history: {champion_history(model_name)}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## Score

# COMMAND ----------

scored = get_step("score").execute(spark, config, options)
print(scored.to_json())

# COMMAND ----------

# MAGIC %md
# MAGIC ## Predictions of this model version

# COMMAND ----------

dataset = config.require_dataset  # key and date columns of the predictions (the demo's: txn_id, event_date)
predictions = (catalog.read(config.scoring.predictions_table)
               .filter(F.col("model_version") == scored.details["model_version"]))
display_df(predictions.groupBy(dataset.date_column, "predicted_label").count()
           .orderBy(dataset.date_column, "predicted_label"))
display_df(predictions.select(*dataset.key, dataset.date_column, "score", "predicted_label", "threshold",
                              "model_version", "scored_at").orderBy(F.desc("score")), n=10)
