# Databricks notebook source
# MAGIC %md
# MAGIC # Monitoring tables
# MAGIC
# MAGIC The monitor step writes every measurement to one Delta table (`monitor.table`, the demo's
# MAGIC `gold.monitoring`) and every alert to another (`monitor.alerts_table`, `gold.monitoring_alerts`):
# MAGIC plain tables, for a Databricks SQL dashboard, a notebook or any Spark reader. One row per
# MAGIC (table, window_start, model_version, kind, subject, metric, slice):
# MAGIC
# MAGIC | column | what |
# MAGIC | --- | --- |
# MAGIC | `table` | the predictions table judged (`silver` for data-quality rows) |
# MAGIC | `window_start` | the window (`monitor.window`: hour, day or week) by event time; data quality by run time |
# MAGIC | `model_version` | the champion judged (NULL for data quality) |
# MAGIC | `kind` | `feature_drift`, `missing_data`, `prediction_drift`, `performance`, `window_drift`, |
# MAGIC | | `profile`, `data_quality` |
# MAGIC | `subject` | the feature, `score`, `(label)`, `model`, `rows`, `*` (the window), `<silver table>:<rule>` |
# MAGIC | `metric` | `psi`, `ks`, `chi2`; `null_share_rise`, `row_drop`; `roc_auc` (judged), |
# MAGIC | | `roc_auc_low`/`_high` (its 95% interval), `pr_auc`, `base_rate`, `positives`; `rmse`, ...; |
# MAGIC | | profiles: `null_share`, `min`, `p05`, `p50`, `p95`, `max`, `mean`, `distinct`, `rows`; |
# MAGIC | | `failure_rate` |
# MAGIC | `slice` | `all` (every row of the window), or `<column>=<value>` for `monitor.slices` |
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

verdict = (records.where((F.col("kind") != "data_quality") & (F.col("slice") == "all"))
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

psi = (records.where((F.col("kind") == "feature_drift") & (F.col("metric") == "psi") & (F.col("slice") == "all"))
       .select("table", "window_start", "subject", F.round("value", 3).alias("psi"),
               F.round("threshold", 3).alias("bar"), "breached")
       .orderBy("table", "subject", "window_start"))
display_df(psi, n=20)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Performance once labels have matured, with the base rate beside it

# COMMAND ----------

performance = (records.where((F.col("kind") == "performance") & (F.col("slice") == "all"))
               .groupBy("table", "window_start", "model_version", "status")
               .pivot("metric").agg(F.first("value"))
               .orderBy("table", "window_start"))
display_df(performance)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Each column's profile over the windows
# MAGIC
# MAGIC One row per (table, column, window): NULL share, percentiles, min/max, mean, distinct values.
# MAGIC `score` is the prediction distribution, `(label)` the label as known so far.

# COMMAND ----------

profile = (records.where((F.col("kind") == "profile") & (F.col("slice") == "all") & (F.col("subject") != "*"))
           .groupBy("table", "subject", "window_start")
           .pivot("metric", ["null_share", "min", "p05", "p50", "p95", "max", "mean", "distinct"])
           .agg(F.first("value"))
           .orderBy("table", "subject", "window_start"))
display_df(profile, n=20)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Slices: rows, score drift and ROC AUC per value of each `monitor.slices` column

# COMMAND ----------

slices = (records.where(F.col("slice") != "all")
          .withColumn("measure", F.concat_ws(":", "kind", "metric"))
          .groupBy("table", "window_start", "slice")
          .pivot("measure", ["profile:rows", "prediction_drift:psi", "performance:roc_auc",
                             "performance:roc_auc_low", "performance:roc_auc_high"])
          .agg(F.first("value"))
          .orderBy("table", "window_start", "slice"))
display_df(slices, n=20)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Alerts, and whether every hook has them

# COMMAND ----------

if alerts is not None:
    display_df(alerts.select("kind", "table", "window_start", "subject", "model_version", "delivery", "attempts",
                             "message").orderBy("raised_at"), n=20)
