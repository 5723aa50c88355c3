"""Train/validation/test splits of a training set: time-based (the default), stratified random,
group-aware. Training fits and evaluates on them; promotion rebuilds a model's test split from
its recorded training set with the same function (split_examples).

Each returns the input with a `split` column ("train", "valid", "test"). Randomness comes from
a hash of the row key and the seed, so a split is reproducible whatever the partitioning.

Cross-validation folds re-split the rows outside test (test stays untouched): `with_fold_blocks`
numbers them once, `fold_split` turns one fold into train/valid/unused.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from lakeboost.config.training import SplitConfig, TrainingConfig
from lakeboost.features.training_set import TrainingSet

SPLIT = "split"


def _uniform(seed: int, *columns: str):
    """A deterministic pseudo-random number in [0, 1) from the row's key columns."""
    return (F.abs(F.xxhash64(F.lit(seed), *[F.col(c) for c in columns])) % F.lit(1_000_003)) / F.lit(1_000_003.0)


QUANTILE_ERROR = 0.001


def exact_quantiles(df: DataFrame, column: str, probabilities: Sequence[float]) -> list[float]:
    """The values at rank ceil(p * n) of a numeric column: exact, so the same whatever the
    partitioning (approxQuantile's answer may move by its error with the row order, and a time
    split rebuilt for a replay must cut exactly where the original did).

    Approximate quantiles at p -/+ 2 x error bracket each target rank; one pass counts the rows
    below each bracket, one collects the few rows inside the brackets (about 4 per mille each).
    """
    value = F.col(column).cast("double")
    values = df.select(value.alias("v")).filter(F.col("v").isNotNull())
    bounds = values.approxQuantile("v", [q for p in probabilities
                                         for q in (max(p - 2 * QUANTILE_ERROR, 0.0), min(p + 2 * QUANTILE_ERROR, 1.0))],
                                   QUANTILE_ERROR)
    brackets = list(zip(bounds[0::2], bounds[1::2], strict=True))
    counts = values.agg(F.count(F.lit(1)).alias("n"), *[F.sum((F.col("v") < F.lit(lo)).cast("long")).alias(f"b{i}")
                                                          for i, (lo, _) in enumerate(brackets)]).first()
    assert counts is not None
    inside = F.lit(False)
    for lo, hi in brackets:
        inside = inside | F.col("v").between(lo, hi)
    near = sorted(r["v"] for r in values.filter(inside).collect())  # ~4 per mille of rows per bracket
    out = []
    for i, (p, (lo, hi)) in enumerate(zip(probabilities, brackets, strict=True)):
        rank = max(math.ceil(p * counts["n"]), 1)  # 1-based
        candidates = [v for v in near if lo <= v <= hi]
        out.append(candidates[rank - (counts[f"b{i}"] or 0) - 1])
    return out


def time_boundaries(df: DataFrame, *, cfg: SplitConfig, time_column: str) -> tuple[dt.datetime, dt.datetime]:
    """(valid_from, test_from): explicit, or quantiles of the event time (one pass)."""
    if cfg.valid_from and cfg.test_from:
        return dt.datetime.fromisoformat(cfg.valid_from), dt.datetime.fromisoformat(cfg.test_from)
    probabilities = [1 - cfg.test_fraction - cfg.valid_fraction, 1 - cfg.test_fraction]
    seconds = exact_quantiles(df, time_column, probabilities)
    valid_from, test_from = (dt.datetime.fromtimestamp(s, tz=dt.timezone.utc).replace(tzinfo=None) for s in seconds)
    return valid_from, test_from


def time_split(df: DataFrame, *, valid_from: dt.datetime, test_from: dt.datetime, time_column: str) -> DataFrame:
    """Train before valid_from, validation until test_from, test after: no test row precedes training."""
    t = F.col(time_column)
    return df.withColumn(
        SPLIT, F.when(t >= F.lit(test_from), "test").when(t >= F.lit(valid_from), "valid").otherwise("train"))


def random_split(df: DataFrame, *, cfg: SplitConfig, label: str, key: Sequence[str]) -> DataFrame:
    """Stratified: within each label, rows are ranked by a seeded hash and cut at the fractions."""
    # percent_rank needs the default frame; one sort per label value, fine for a few classes.
    rank = F.percent_rank().over(Window.partitionBy(label).orderBy(_uniform(cfg.seed, *key), *[F.col(k) for k in key]))
    return _cut(df.withColumn("__u", rank), cfg)


def group_split(df: DataFrame, *, cfg: SplitConfig) -> DataFrame:
    """Every row of a group value gets the same split: no entity is in two splits."""
    assert cfg.group_column is not None  # SplitConfig requires group_column when kind is group
    return _cut(df.withColumn("__u", _uniform(cfg.seed, cfg.group_column)), cfg)


def _cut(df: DataFrame, cfg: SplitConfig) -> DataFrame:
    u = F.col("__u")
    return df.withColumn(
        SPLIT,
        F.when(u >= 1 - cfg.test_fraction, "test").when(u >= 1 - cfg.test_fraction - cfg.valid_fraction, "valid")
        .otherwise("train"),
    ).drop("__u")


def assign_splits(df: DataFrame, *, cfg: SplitConfig, label: str, key: Sequence[str], time_column: str) -> DataFrame:
    if cfg.kind == "time":
        valid_from, test_from = time_boundaries(df, cfg=cfg, time_column=time_column)
        return time_split(df, valid_from=valid_from, test_from=test_from, time_column=time_column)
    if cfg.kind == "group":
        return group_split(df, cfg=cfg)
    return random_split(df, cfg=cfg, label=label, key=key)


def split_examples(training: TrainingSet, cfg: TrainingConfig) -> DataFrame:
    """The training set's key, time, label and feature columns (and the group column of a group
    split) with the `split` column of `cfg.split`."""
    columns = [*training.key, training.event_time, training.label, *training.feature_columns]
    if cfg.split.group_column and cfg.split.group_column not in columns:
        columns.append(cfg.split.group_column)
    return assign_splits(training.df.select(*dict.fromkeys(columns)), cfg=cfg.split, label=training.label,
                         key=training.key, time_column=training.event_time)


FOLD_BLOCK = "_fold_block"
UNUSED = "unused"  # a fold's rows that neither train nor validate (a time fold's future)


def with_fold_blocks(df: DataFrame, *, cfg: SplitConfig, folds: int, key: Sequence[str], time_column: str
                     ) -> DataFrame:
    """Number the non-test rows of a split frame into blocks for `folds`-fold cross-validation.

    Time splits get folds + 1 consecutive time blocks (quantiles of the event time, one pass):
    forward chaining, so fold i trains on blocks 0..i and validates on block i + 1 and never
    validates on the past of its training rows. Random and group splits get `folds` blocks by
    seeded hash (of the group for group splits, which keeps every group in one block).
    """
    not_test = F.col(SPLIT) != "test"
    if cfg.kind == "time":
        probabilities = [i / (folds + 1) for i in range(1, folds + 1)]
        seconds = exact_quantiles(df.filter(not_test), time_column, probabilities)
        # A quantile is the last value of its block (an element of the data).
        block = sum((F.col(time_column).cast("double") > F.lit(s)).cast("int") for s in seconds)
    else:
        hashed = (cfg.group_column,) if cfg.kind == "group" and cfg.group_column else tuple(key)
        block = F.floor(_uniform(cfg.seed + 1, *hashed) * folds).cast("int")
    return df.withColumn(FOLD_BLOCK, F.when(not_test, block))


def fold_split(df: DataFrame, *, kind: str, fold: int) -> DataFrame:
    """The split column for fold `fold` (0-based) of a frame numbered by with_fold_blocks."""
    block = F.col(FOLD_BLOCK)
    if kind == "time":
        split = F.when(block <= fold, "train").when(block == fold + 1, "valid").otherwise(UNUSED)
    else:
        split = F.when(block == fold, "valid").otherwise("train")
    return df.withColumn(SPLIT, F.when(block.isNull(), "test").otherwise(split))
