# Databricks notebook source
# MAGIC %md
# MAGIC # Monitoring tables
# MAGIC
# MAGIC The monitor step writes every measurement to one Delta table (`monitor.table`, the demo's
# MAGIC `gold.monitoring`) and every alert to another (`monitor.alerts_table`, `gold.monitoring_alerts`):
# MAGIC plain tables, for a Databricks SQL dashboard, a notebook or any Spark reader. One row per
# MAGIC (table, window_start, model_version, kind, subject, metric):
# MAGIC
# MAGIC | column | what |
# MAGIC | --- | --- |
# MAGIC | `table` | the predictions table judged (`silver` for data-quality rows) |
# MAGIC | `window_start` | the window (`monitor.window`: hour, day or week) by event time; data quality by run time |
# MAGIC | `model_version` | the champion judged (NULL for data quality) |
# MAGIC | `kind` | `feature_drift`, `missing_data`, `prediction_drift`, `performance`, `data_quality` |
# MAGIC | `subject` | the feature, `score`, `model`, or `<silver table>:<rule>` |
# MAGIC | `metric` | `psi`, `ks`, `chi2`; `null_share_rise`; `roc_auc` (judged), `pr_auc`, `base_rate`, |
# MAGIC | | `positives`; `rmse`, ...; `failure_rate` |
# MAGIC | `value`, `threshold` | the measurement and the bar that decided it (NULL: shown, not judged) |
# MAGIC | `breached` | whether the value reached the bar |
# MAGIC | `rows`, `status` | the window's rows; `ok`, `too_few_rows`, `pending_labels`, `too_few_labels` |
# MAGIC | `cause` | a breach's likely cause |
# MAGIC | `monitor_run_id`, `computed_at` | the run that wrote the row (rows are upserted: a re-run changes nothing) |
# MAGIC
# MAGIC Parameters: `env`, `overrides` (comma-separated `--set` list). Outside Databricks:
# MAGIC `LAKEBOOST_ENV`, `LAKEBOOST_OVERRIDES`.

# COMMAND ----------

import sys
from pathlib import Path

if Path("../lib/lakeboost").is_dir():  # opened from notebooks/ in a checkout (Databricks Git folder, Jupyter)
    sys.path.insert(0, str(Path("../lib").resolve()))

from lakeboost.io import TableCatalog
from lakeboost.notebook import display_df, notebook_context, widget
from pyspark.sql import functions as F

env = widget("env", "local", "config environment")
overrides = widget("overrides", "", "--set overrides (comma-separated)")

# COMMAND ----------

spark, config = notebook_context(env, overrides)
catalog = TableCatalog(spark, config.storage)
records = catalog.read(config.monitor.table)
alerts = catalog.read(config.monitor.alerts_table) if catalog.exists(config.monitor.alerts_table) else None

# COMMAND ----------

# MAGIC %md
# MAGIC ## The verdict per window
# MAGIC
# MAGIC Breaches by kind for each judged table and window (the latest model version judged there).

# COMMAND ----------

verdict = (records.where(F.col("kind") != "data_quality")
           .groupBy("table", "window_start", "model_version")
           .pivot("kind", ["feature_drift", "missing_data", "prediction_drift", "performance"])
           .agg(F.sum(F.col("breached").cast("int")))
           .na.fill(0)
           .orderBy("table", "window_start", "model_version"))
display_df(verdict)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Drift of each feature over the windows, against its own bar

# COMMAND ----------

psi = (records.where((F.col("kind") == "feature_drift") & (F.col("metric") == "psi"))
       .select("table", "window_start", "subject", F.round("value", 3).alias("psi"),
               F.round("threshold", 3).alias("bar"), "breached")
       .orderBy("table", "subject", "window_start"))
display_df(psi, n=20)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Performance once labels have matured, with the base rate beside it

# COMMAND ----------

performance = (records.where(F.col("kind") == "performance")
               .groupBy("table", "window_start", "model_version", "status")
               .pivot("metric").agg(F.first("value"))
               .orderBy("table", "window_start"))
display_df(performance)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Alerts, and whether every hook has them

# COMMAND ----------

if alerts is not None:
    display_df(alerts.select("kind", "table", "window_start", "subject", "model_version", "delivery", "attempts",
                             "message").orderBy("raised_at"), n=20)
