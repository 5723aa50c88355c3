"""Model inputs: the one preparation of train and tune (class counts, class weight, negative
down-sampling, categorical encodings fitted on training rows only), and the worker layout.

xgboost.spark runs one barrier task per worker over one partition each. A worker whose
partition holds one class only, or no validation rows, fails or trains a degenerate model
(a known xgboost.spark failure at 2% positives), so lakeboost lays the partitions out itself:
within each (label, split) stratum rows are dealt round-robin to the workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from lakeboost.config.training import TrainingConfig
from lakeboost.errors import TrainingError
from lakeboost.features.splits import SPLIT
from lakeboost.features.training_set import TrainingSet
from lakeboost.model.encodings import FREQUENCY, NATIVE, NULL_CATEGORY, Encodings, apply_encodings

WORKER = "__worker"
BUCKET, START = "__deal_bucket", "__deal_start"
DEAL_BUCKETS = 64  # per stratum: the numbering's parallelism (and its largest task: 1/64 of a stratum)
VALID = "is_valid"


def class_counts(df: DataFrame, *, label: str) -> dict[str, dict[int, int]]:
    """Rows per split and label (regression: the label is bucketed to 0 for counting)."""
    is_integral = df.schema[label].dataType.typeName() in ("integer", "long")
    numeric_label = F.col(label).cast("int") if is_integral else F.lit(0)
    rows = df.groupBy(SPLIT, numeric_label.alias("y")).count().collect()
    counts: dict[str, dict[int, int]] = {}
    for row in rows:
        counts.setdefault(row[SPLIT], {})[int(row["y"])] = int(row["count"])
    return counts


@dataclass(frozen=True)
class PreparedExamples:
    """The split examples as every fit consumes them (the distributed fit, single-node trials)."""

    weight: float | None  # scale_pos_weight of a balanced binary fit, corrected for down-sampling
    encodings: Encodings  # fitted on the (down-sampled) training split, stored with the model
    encoded: DataFrame  # every split, training negatives down-sampled, categories encoded
    native: tuple[str, ...] = ()  # categorical columns given as codes for xgboost's own support


def prepare_examples(examples: DataFrame, counts: dict[str, dict[int, int]], training: TrainingSet,
                     cfg: TrainingConfig) -> PreparedExamples:
    """Class weight, negative down-sampling and frequency encodings of `examples` (split_examples'
    rows, counted by class_counts): one definition for train and tune, so a tuning trial sees the
    rows the final fit sees. Two small jobs (the counts are the caller's): the encodings' fit.

    Raises:
        TrainingError: the training or the validation split is empty.
    """
    if not counts.get("train") or not counts.get("valid"):
        raise TrainingError(f"empty split(s): {counts}; check training.split against the data's time range")
    weight = scale_pos_weight(counts["train"]) if cfg.model.objective == "binary:logistic" and \
        cfg.imbalance.class_weight == "balanced" else None
    if weight is not None:  # negatives kept after down-sampling: do not correct twice
        weight *= cfg.imbalance.negative_sample_rate
    sampled = downsample_negatives(examples, rate=cfg.imbalance.negative_sample_rate, label=training.label,
                                   seed=cfg.split.seed, key=training.key)
    categorical = tuple(c for c in training.categorical if c in training.feature_columns)
    frequencies = fit_frequency_encodings(sampled.filter(F.col(SPLIT) == "train"), categorical)
    if training.categorical_encoding == NATIVE:
        codes = {column: category_codes(table) for column, table in frequencies.items()}
        return PreparedExamples(weight, codes, apply_encodings(sampled, codes, NATIVE), native=categorical)
    return PreparedExamples(weight, frequencies, apply_encodings(sampled, frequencies, FREQUENCY))


def fit_frequency_encodings(train: DataFrame, columns: tuple[str, ...]) -> Encodings:
    """Each column's category frequencies on `train` (target-free, so no label leakage), from one
    aggregation over every column. The tables come to the driver: they are stored with the model,
    and training and scoring apply them the same way (model.encodings.apply_encodings)."""
    if not columns:
        return {}
    pairs = F.explode(F.array(*[F.struct(F.lit(c).alias("column"), F.col(c).cast("string").alias("value"))
                                for c in columns]))
    rows = train.select(pairs.alias("pair")).groupBy("pair.column", "pair.value").count() \
        .collect()  # the categories of every column: small for a categorical feature
    totals: dict[str, int] = {c: 0 for c in columns}
    for row in rows:
        totals[row["column"]] += int(row["count"])
    encodings: Encodings = {c: {} for c in columns}
    for row in sorted(rows, key=lambda r: (r["column"], r["value"] is None, r["value"] or "")):
        category = NULL_CATEGORY if row["value"] is None else row["value"]
        encodings[row["column"]][category] = int(row["count"]) / totals[row["column"]]
    return encodings


def category_codes(frequencies: dict[str, float]) -> dict[str, float]:
    """A column's native codes from its training frequencies: 0 for the most frequent category,
    then by falling frequency (ties by the category's text), so a code means the same category
    however the rows were ordered."""
    ranked = sorted(frequencies.items(), key=lambda kv: (-kv[1], kv[0]))
    return {category: float(code) for code, (category, _) in enumerate(ranked)}


def scale_pos_weight(class_counts: dict[int, int]) -> float:
    """negatives / positives of the training split."""
    positives, negatives = class_counts.get(1, 0), class_counts.get(0, 0)
    if positives == 0 or negatives == 0:
        raise TrainingError(f"the training split has {positives} positive and {negatives} negative rows; "
                            "both classes are needed (widen the data range or change the split)")
    return negatives / positives


def downsample_negatives(df: DataFrame, *, rate: float, label: str, seed: int, key: Sequence[str]) -> DataFrame:
    """Keep all positives and a seeded `rate` share of training negatives; other splits untouched."""
    if rate >= 1.0:
        return df
    keep = (F.col(SPLIT) != "train") | (F.col(label) == 1) | (
        (F.abs(F.xxhash64(F.lit(seed), *[F.col(k) for k in key])) % 1_000_000) < int(rate * 1_000_000))
    return df.filter(keep)


def layout_for_workers(df: DataFrame, *, num_workers: int, label: str, key: Sequence[str],
                       stratify_label: bool = True) -> DataFrame:
    """Exactly `num_workers` partitions, each with rows of every (label, split) stratum.

    Within each stratum, rows are dealt round-robin to the workers in a fixed order: by hash
    bucket of the key, then by key hash within the bucket. Numbering a whole stratum with one
    window would sort it in a single task (at 100M rows, nearly every row); instead each bucket
    is numbered by its own window partition (DEAL_BUCKETS per stratum, sorted in parallel) and
    starts where the buckets before it ended (their counts: one small aggregation), which is
    the same round-robin deal: per stratum, worker counts differ by at most one.

    Each worker number is then mapped to a key that Spark's hash partitioner sends to
    partition w (range partitioning cannot promise that for a handful of distinct keys).
    """
    strata = [label, VALID] if stratify_label else [VALID]  # regression: labels are not classes
    key_columns = [F.col(k) for k in key]
    buckets = max(DEAL_BUCKETS, 4 * num_workers)
    spark = df.sparkSession
    with_bucket = df.withColumn(BUCKET, F.pmod(F.xxhash64(*key_columns, F.lit(29)), F.lit(buckets)))
    counts = with_bucket.groupBy(*strata, BUCKET).count().collect()  # strata x buckets rows: small
    starts: list[tuple] = []
    running: dict[tuple, int] = {}
    for row in sorted(counts, key=lambda r: (tuple(str(r[c]) for c in strata), r[BUCKET])):
        stratum = tuple(row[c] for c in strata)
        starts.append((*stratum, row[BUCKET], running.get(stratum, 0)))
        running[stratum] = running.get(stratum, 0) + row["count"]
    schema = with_bucket.select(*strata, BUCKET).schema.add(START, "long")
    offsets = spark.createDataFrame(starts, schema)
    deal = Window.partitionBy(*strata, BUCKET).orderBy(F.xxhash64(*key_columns), *key_columns)
    # bigint, like spark.range ids: hash(int) and hash(bigint) differ.
    keys = F.array(*[F.lit(k).cast("bigint") for k in partition_keys(spark, num_workers)])
    return (
        with_bucket.join(F.broadcast(offsets), on=[*strata, BUCKET], how="inner")
        .withColumn(WORKER, (F.col(START) + F.row_number().over(deal) - 1) % num_workers)
        .withColumn(WORKER, F.element_at(keys, (F.col(WORKER) + 1).cast("int")))
        .drop(BUCKET, START)
        .repartition(num_workers, WORKER)
        # Mix the strata inside each partition: xgboost.spark (3.2-3.4) fails (KeyError 'values') on an
        # Arrow batch holding only training or only validation rows, and the numbering above
        # leaves each partition sorted by stratum (10k-row batches would be one-sided).
        .sortWithinPartitions(F.xxhash64(*key_columns, F.lit(17)))
    )


def partition_keys(spark, num_workers: int) -> list[int]:
    """For each partition p < num_workers, a bigint that hash partitioning puts in p."""
    # pmod(hash(x), n) is exactly HashPartitioning's partition id; a few hundred candidates suffice.
    rows = (
        spark.range(num_workers * 64)
        .select("id", F.expr(f"pmod(hash(id), {num_workers})").alias("p"))
        .groupBy("p").agg(F.min("id").alias("id"))
        .collect()
    )
    found = {r.p: r.id for r in rows}
    return [found[p] for p in range(num_workers)]


def partition_counts(df: DataFrame, *, label: str) -> DataFrame:
    """Per partition p: its distinct labels (`classes`) and validation rows (`valid`)."""
    return df.groupBy(F.spark_partition_id().alias("p")).agg(
        F.countDistinct(label).alias("classes"), F.sum(F.col(VALID).cast("int")).alias("valid"))


def layout_problems(counts: DataFrame, *, num_workers: int, classes: int, need_validation: bool = True) -> list[str]:
    """Worker partitions missing a class or validation rows, from per-partition `counts`
    (partition_counts' columns p, classes, valid: one small aggregation)."""
    rows = counts.collect()  # one row per worker
    problems = [f"worker partition {r.p}: {r.classes} class(es), {r.valid} validation rows"
                for r in rows if r.classes < classes or (need_validation and not r.valid)]
    if len(rows) != num_workers:
        problems.append(f"{len(rows)} non-empty partitions for {num_workers} workers")
    return problems
