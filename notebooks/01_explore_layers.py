# Databricks notebook source
# MAGIC %md
# MAGIC # Explore the lakehouse layers
# MAGIC
# MAGIC Bronze, silver and gold tables through `lakeboost.io.TableCatalog` (the module every job reads
# MAGIC and writes through): row counts and versions, samples, the quarantines with their reasons, and
# MAGIC the data-quality metrics refine records per rule and run. Run the pipeline first
# MAGIC (`jobs/pipeline.py` or the notebook `02_pipeline_step_by_step`).
# MAGIC
# MAGIC Parameters: `env`, `overrides` (comma-separated `--set` list); outside Databricks the environment
# MAGIC variables `LAKEBOOST_ENV`, `LAKEBOOST_OVERRIDES`.

# COMMAND ----------

import sys
from pathlib import Path

if Path("../lib/lakeboost").is_dir():  # opened from notebooks/ in a checkout (Databricks Git folder, Jupyter)
    sys.path.insert(0, str(Path("../lib").resolve()))

import matplotlib.pyplot as plt
import pandas as pd
from lakeboost.io import TableCatalog
from lakeboost.notebook import display_df, notebook_context, widget
from lakeboost.refine.integrate import output_table
from pyspark.sql import functions as F

env = widget("env", "local", "config environment")
overrides = widget("overrides", "", "--set overrides (comma-separated)")

# COMMAND ----------

spark, config = notebook_context(env, overrides)
catalog = TableCatalog(spark, config.storage)
# The framework's own tables (storage.tables): quarantines, data quality, the training set.
BRONZE_QUARANTINE, SILVER_QUARANTINE = catalog.tables.bronze_quarantine, catalog.tables.silver_quarantine
QUALITY, TRAINING_SET = catalog.tables.data_quality, catalog.tables.training_set
# The integrated silver tables (silver.integrations; the demo's is silver.transactions_enriched).
integrated = [output_table(name, spec) for name, spec in config.silver.integrations.items()]

# COMMAND ----------

# MAGIC %md
# MAGIC ## Tables: versions and row counts

# COMMAND ----------

tables = [
    *(f"bronze.{name}" for name in config.sources), BRONZE_QUARANTINE,
    *(f"silver.{name}" for name in config.silver.tables), *integrated, SILVER_QUARANTINE, QUALITY,
    *(f"gold.{name}" for name in config.gold.features), TRAINING_SET, config.scoring.predictions_table,
]
inventory = pd.DataFrame([
    {"table": name, "location": catalog.identifier(name) or catalog.path(name), "version": catalog.version(name),
     "rows": catalog.read(name).count() if catalog.exists(name) else None}
    for name in tables
])
print(inventory.to_string(index=False))

# COMMAND ----------

# MAGIC %md
# MAGIC ## Samples: silver and gold
# MAGIC Bronze is not sampled here: it holds the raw values, PII included, as they arrived.

# COMMAND ----------

for name in ("silver.transactions", *integrated, *(f"gold.{n}" for n in config.gold.features)):
    if catalog.exists(name):
        print(f"--- {name}")
        display_df(catalog.read(name), n=5)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Quarantines
# MAGIC Bronze rejects rows that do not parse (the reason names the column and value); silver rejects
# MAGIC values that fail to cast (grouped by column) and rows failing `quarantine` contracts (by rules).

# COMMAND ----------

if catalog.exists(BRONZE_QUARANTINE):
    bronze_reasons = (
        catalog.read(BRONZE_QUARANTINE)
        .groupBy("source", F.substring_index("reason", ":", 1).alias("reason_kind"))
        .agg(F.count(F.lit(1)).alias("rows"), F.first("reason").alias("example"))
        .orderBy(F.desc("rows"))
    )
    display_df(bronze_reasons, n=50)

# COMMAND ----------

if catalog.exists(SILVER_QUARANTINE):
    silver_reasons = (
        catalog.read(SILVER_QUARANTINE)
        .groupBy("table", F.substring_index("failed_rules", ":", 1).alias("rules_or_column"))
        .agg(F.count(F.lit(1)).alias("rows"), F.first("record").alias("example"))
        .orderBy(F.desc("rows"))
    )
    display_df(silver_reasons, n=50)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Data quality per rule over runs
# MAGIC `silver.data_quality` holds, per refine run, table and rule, the rows that passed and failed
# MAGIC (`_conformance` counts values that failed to cast).

# COMMAND ----------

quality = (
    catalog.read(QUALITY)
    .groupBy("run_id", "table", "rule", "action")
    .agg(F.sum("passed").alias("passed"), F.sum("failed").alias("failed"), F.min("recorded_at").alias("run_at"))
    .withColumn("pass_rate", F.round(F.try_divide(F.col("passed"), F.col("passed") + F.col("failed")), 4))
    .orderBy("run_at", "table", "rule")
)
pass_rates = quality.toPandas()  # one row per run, table and rule: small
print(pass_rates.drop(columns=["run_id"]).to_string(index=False))

# COMMAND ----------

by_run = pass_rates.assign(rule=pass_rates["table"] + ":" + pass_rates["rule"]).pivot_table(
    index="run_at", columns="rule", values="pass_rate")
fig, ax = plt.subplots(figsize=(9, 4))
by_run.plot(ax=ax, marker="o", legend=False)
ax.set(title="pass rate per rule and run", xlabel="run", ylabel="pass rate", ylim=(min(0.9, by_run.min().min()), 1.001))
ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small")
fig.tight_layout()
plt.show()
plt.close(fig)
