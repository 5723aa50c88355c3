# Databricks notebook source
# MAGIC %md
# MAGIC # The pipeline, step by step
# MAGIC
# MAGIC Runs each step of the config's `pipeline.steps` in its own cell, with the same function the
# MAGIC pipeline job calls (`lakeboost.steps.get_step(name).execute(spark, config)`, from the steps
# MAGIC registry), and shows the step's summary: generate (demo data, the `card_fraud` application's
# MAGIC step) -> ingest (bronze) -> refine (silver) -> features (gold) -> train -> promote -> score
# MAGIC -> score_stream (live events) -> monitor.
# MAGIC
# MAGIC Parameters: `env` (config overlay) and `overrides` (comma-separated `--set` list, e.g.
# MAGIC `demo.rows=100000, training.model.n_estimators=200`). Outside Databricks they come from the
# MAGIC environment variables `LAKEBOOST_ENV` and `LAKEBOOST_OVERRIDES`. Steps are idempotent: re-running
# MAGIC a cell writes nothing new.

# COMMAND ----------

import sys
from pathlib import Path

if Path("../lib/lakeboost").is_dir():  # opened from notebooks/ in a checkout (Databricks Git folder, Jupyter)
    sys.path.insert(0, str(Path("../lib").resolve()))

import pandas as pd
from lakeboost.logs import StepSummary
from lakeboost.notebook import notebook_context, widget
from lakeboost.steps import configured_steps, get_step

env = widget("env", "local", "config environment")
overrides = widget("overrides", "", "--set overrides (comma-separated)")

# COMMAND ----------

spark, config = notebook_context(env, overrides)
summaries: dict[str, StepSummary] = {}
print(f"lakehouse {config.storage.root}, landing {config.storage.landing}; steps {configured_steps(config)}")

# COMMAND ----------

# MAGIC %md
# MAGIC ## generate
# MAGIC Deterministic card-fraud demo data (files, a JDBC database) into `storage.landing`.

# COMMAND ----------

summaries["generate"] = get_step("generate").execute(spark, config)
print(summaries["generate"].to_json())

# COMMAND ----------

# MAGIC %md
# MAGIC ## ingest
# MAGIC Every source into `bronze.<source>`; malformed rows into `bronze.quarantine` with a reason.

# COMMAND ----------

summaries["ingest"] = get_step("ingest").execute(spark, config)
print(summaries["ingest"].to_json())

# COMMAND ----------

# MAGIC %md
# MAGIC ## refine
# MAGIC Bronze to silver: types, contracts, PII protection, latest-wins upserts, the enriched transactions.

# COMMAND ----------

summaries["refine"] = get_step("refine").execute(spark, config)
print(summaries["refine"].to_json())

# COMMAND ----------

# MAGIC %md
# MAGIC ## features
# MAGIC Gold feature tables and the point-in-time training set.

# COMMAND ----------

summaries["features"] = get_step("features").execute(spark, config)
print(summaries["features"].to_json())

# COMMAND ----------

# MAGIC %md
# MAGIC ## train
# MAGIC A distributed XGBoost fit, tracked in MLflow and registered as the `challenger`
# MAGIC (a tuning search instead when `training.tune` is configured).

# COMMAND ----------

summaries["train"] = get_step("train").execute(spark, config)
print(summaries["train"].to_json())

# COMMAND ----------

# MAGIC %md
# MAGIC ## promote
# MAGIC The challenger becomes `champion` only if it beats the current champion on the same snapshot.

# COMMAND ----------

summaries["promote"] = get_step("promote").execute(spark, config)
print(summaries["promote"].to_json())

# COMMAND ----------

# MAGIC %md
# MAGIC ## score
# MAGIC The champion scores the latest date partition into `gold.predictions`.

# COMMAND ----------

summaries["score"] = get_step("score").execute(spark, config)
print(summaries["score"].to_json())

# COMMAND ----------

# MAGIC %md
# MAGIC ## score_stream
# MAGIC The live card events (bronze stream) are refined with the silver contract, given features by the
# MAGIC batch feature code over their Delta history, scored by the current champion and written exactly
# MAGIC once to `gold.stream_predictions` (a long-lived stream: `jobs/score_stream.py --continuous`).

# COMMAND ----------

summaries["score_stream"] = get_step("score_stream").execute(spark, config)
print(summaries["score_stream"].to_json())

# COMMAND ----------

# MAGIC %md
# MAGIC ## monitor
# MAGIC Feature and prediction drift against the training set, performance once labels arrive, and the
# MAGIC data-quality trend, per window, into `gold.monitoring`; breaches become alerts. The HTML report is
# MAGIC logged to MLflow.

# COMMAND ----------

summaries["monitor"] = get_step("monitor").execute(spark, config)
print(summaries["monitor"].to_json())

# COMMAND ----------

# MAGIC %md
# MAGIC ## Summary

# COMMAND ----------

counts = pd.DataFrame(
    [{"step": name, "rows_read": s.rows_read, "rows_written": s.rows_written,
      "rows_quarantined": s.rows_quarantined, "rows_skipped": s.rows_skipped} for name, s in summaries.items()]
)
print(counts.to_string(index=False))
train = summaries["train"].details
print(f"model v{train['model_version']} (run {train['run_id']}): test {train['metrics'].get('test')}")
print(f"promotion: {summaries['promote'].details.get('decision')}")
