"""The loss model's trees as Spark expressions give what xgboost itself predicts, NULL and NaN
inputs included, and its interval multipliers follow the window's size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from lakeboost.model.loss import LossModel
from lakeboost.train import loss as training
from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def test_the_trees_written_as_spark_expressions_predict_what_xgboost_predicts(spark: SparkSession) -> None:
    rng = np.random.default_rng(5)
    n = 3000
    frame = pd.DataFrame({"score": rng.normal(10, 3, n), "a": rng.uniform(0, 1, n), "b": rng.uniform(0, 1, n)})
    frame.loc[rng.random(n) < 0.2, "a"] = np.nan  # missing inputs: xgboost sends them one way per split
    frame["y"] = frame["score"] + rng.normal(0, 1, n) * (0.5 + 3 * frame["b"] + 2 * frame["a"].isna())
    frame["t"] = pd.date_range("2026-03-02", periods=n, freq="min")
    validation = spark.createDataFrame(frame)
    model = training.fit_loss_model(validation, features=["a", "b"], label="y", prediction="score", order="t")
    # The oracle: the booster xgboost fits on the same rows with the same settings (the fit is exact
    # and seeded), predicting on the rows itself.
    x = frame[["score", "a", "b"]].to_numpy(dtype=float)
    error = np.abs(frame["score"] - frame["y"]).to_numpy()
    booster = training._boosted(x, error, base=float(error.mean()), seed=0)
    expected = np.maximum(booster.predict(xgb.DMatrix(x, missing=np.nan)), 0.0)
    # About half the missing inputs (NULL: Spark reads pandas' NaN so) as NaN: both read as missing.
    mixed = validation.withColumn("i", F.monotonically_increasing_id())
    mixed = mixed.withColumn("a", F.when(F.col("a").isNull() & (F.rand(3) < 0.5), F.lit(float("nan")))
                             .otherwise(F.col("a")))
    assert mixed.where(F.col("a").isNull()).count() > 200 and mixed.where(F.isnan("a")).count() > 200
    got = (model.inputs_of(mixed, "score").select("i", model.column("abs").alias("abs")).orderBy("i")
           .toPandas()["abs"].to_numpy())
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-5)
    # Rows with a missing `a` have larger errors: the trees learnt it, through the missing branch.
    assert got[frame["a"].isna()].mean() > 1.5 * got[~frame["a"].isna()].mean()


def test_the_interval_narrows_as_windows_grow_and_survives_json() -> None:
    # Quantiles of realized / estimated loss: 0.5-1.5 for 16-row windows, 0.9-1.1 for 1,024 rows.
    ratios = {t: [[0.5 + k / 12 for k in range(13)], [0.9 + 0.2 * k / 12 for k in range(13)]]
              for t in ("abs", "sq")}
    model = LossModel(("a",), {"abs": 1.0, "sq": 1.0}, {"abs": [], "sq": []}, (16, 1024), ratios,
                      {"rows": 2048.0, "mae": 1.0, "rmse": 1.0})
    assert LossModel.from_dict(model.to_dict()) == model
    # 95%: the 2.5% and 97.5% quantiles, the 3rd and 11th stored; above the sizes, the largest's;
    # below the smallest, none (a 10-row window strays further than any 16-row one did).
    assert model.interval("abs", 10, 0.95) is None and model.interval("sq", 15, 0.95) is None
    small, middle, large = (model.interval("abs", rows, 0.95) for rows in (16, 128, 5000))
    assert small is not None and middle is not None and large is not None
    assert small == pytest.approx((0.5 + 2 / 12, 0.5 + 10 / 12))
    assert large == pytest.approx((0.9 + 0.4 / 12, 0.9 + 2 / 12))
    assert middle == pytest.approx(((small[0] + large[0]) / 2, (small[1] + large[1]) / 2))  # 128: halfway in log
