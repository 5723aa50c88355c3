"""Training configuration: objective, split, imbalance, xgboost parameters, tracking."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from lakeboost.config.base import Frozen
from lakeboost.config.tuning import TuneConfig

Objective = Literal["binary:logistic", "multi:softprob", "reg:squarederror", "reg:absoluteerror"]


class SplitConfig(Frozen):
    """How examples are divided. The test split is never seen by training or tuning.

    time: the latest `test_fraction` of time is test, the `valid_fraction` before it validation
    (or explicit `valid_from` / `test_from` timestamps). random: stratified by label.
    group: every row of one `group_column` value lands in the same split.
    """

    kind: Literal["time", "random", "group"] = "time"
    valid_fraction: float = Field(0.15, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    valid_from: str | None = None
    test_from: str | None = None
    group_column: str | None = None
    seed: int = 7

    @model_validator(mode="after")
    def _consistent(self) -> SplitConfig:
        if self.valid_fraction + self.test_fraction >= 0.9:
            raise ValueError("valid_fraction + test_fraction must leave at least 10% for training")
        if self.kind == "group" and not self.group_column:
            raise ValueError("kind: group needs group_column")
        if (self.valid_from is None) != (self.test_from is None):
            raise ValueError("set both valid_from and test_from, or neither")
        return self


class ImbalanceConfig(Frozen):
    # scale_pos_weight = negatives / positives of the training split (binary only)
    class_weight: Literal["balanced", "none"] = "balanced"
    # Keep this share of training negatives (1.0: no resampling); validation/test untouched.
    negative_sample_rate: float = Field(1.0, gt=0, le=1)


class CrossValidationConfig(Frozen):
    """Cross-validation over train + validation before the final fit (test is never touched).

    Time splits: forward chaining over folds + 1 time blocks (fold i trains on blocks 0..i and
    validates on block i + 1). Random and group splits: k-fold by seeded hash, groups kept whole.
    Each fold is a full fit with early stopping; the mean and spread of the validation metrics
    are logged with the final model's run.
    """

    folds: int = Field(0, ge=0, description="0 disables; otherwise at least 2")

    @model_validator(mode="after")
    def _at_least_two(self) -> CrossValidationConfig:
        if self.folds == 1:
            raise ValueError("cross_validation.folds: 1 fold is no cross-validation; use 0 (off) or at least 2")
        return self


class ThresholdConfig(Frozen):
    """How the decision threshold is chosen on the validation split."""

    strategy: Literal["max_f1", "target_precision", "target_recall", "fixed"] = "max_f1"
    target: float = Field(0.5, gt=0, lt=1)


class CalibrationConfig(Frozen):
    """Map a binary model's raw scores to probabilities, fitted on the validation split
    (lakeboost.train.calibrate). The threshold, every stored score and the metrics use the
    calibrated probability; `raw_` metrics keep the uncalibrated ones for comparison.
    Multiclass and regression models are not calibrated (no class weights distort them).

    `auto` keeps a calibrator only where it earns its place: none, platt and isotonic are each
    fitted on all validation folds but one (contiguous spans of event time) and judged on that
    one by `select_by`; platt or isotonic wins only when its held-out loss beats the raw
    scores' by more than two standard errors across the folds. A named method is kept as named;
    the same held-out figures are logged beside it either way."""

    method: Literal["auto", "platt", "isotonic", "none"] = "auto"
    folds: int = Field(5, ge=2, le=20)  # validation folds `auto` judges the candidates on
    select_by: Literal["log_loss", "brier"] = "log_loss"
    bins: int = Field(10, ge=2, le=100)  # reliability bins of the ECE and the calibration plot


class ModelConfig(Frozen):
    objective: Objective = "binary:logistic"
    num_workers: int = Field(2, ge=1)
    device: Literal["cpu", "cuda"] = "cpu"
    n_estimators: int = Field(400, ge=1)
    early_stopping_rounds: int | None = Field(30, ge=1)
    eval_metric: str | None = None  # default per objective (aucpr for binary)
    # Any other xgboost parameter, passed through (max_depth, learning_rate, subsample, ...).
    params: dict[str, Any] = Field(default_factory=dict)
    # Threads each xgboost worker trains with. Unset: spark.task.cpus on a cluster (xgboost.spark's
    # rule: set it in spark.yml or with spark-submit.sh --conf), and on a local master the
    # machine's task slots shared among the workers (nothing else runs during the fit, and one
    # worker with every core skips the workers' per-level exchange of histograms).
    worker_threads: int | None = Field(None, ge=1)
    # How the fit's rows reach the xgboost workers. files: written once as Parquet (features as
    # float32), each worker reading its own file with pyarrow; spark: xgboost.spark's own stream
    # (every row converted to Arrow and pandas in the fit). auto: files on a local master (a
    # temporary directory) or wherever worker_files_dir is set, else spark.
    worker_data: Literal["auto", "files", "spark"] = "auto"
    # A directory every executor can read (pyarrow opens it: a local or mounted path, s3://,
    # gs://, hdfs://, abfs://), e.g. under the lakehouse's storage; each fit uses and then
    # removes its own subdirectory.
    worker_files_dir: str | None = None
    # Spark cannot retry one task of a barrier stage: a lost worker fails the fit, which is then
    # run again, up to fit_retries times.
    fit_retries: int = Field(1, ge=0)
    # Worker 0 saves the booster every this many rounds (0: never), and a retried fit resumes from
    # the newest checkpoint with the remaining rounds instead of starting again: at most this many
    # rounds are lost, and the booster equals an uninterrupted fit's tree for tree. The checkpoints
    # go to a temporary directory on a local master, else under worker_files_dir (required then).
    # Turns on xgboost's seed_per_iteration (row and column sampling seeded by the round number,
    # so a resumed fit draws what the uninterrupted one draws): with subsample or colsample_* below
    # 1 the model differs from one trained with checkpoint_every: 0 by its random draws.
    checkpoint_every: int = Field(0, ge=0)
    # The training curve beside the validation curve (MLflow's curve_train_<metric>): each worker
    # evaluates this many of its training rows (a fixed, evenly spaced sample) every round. 0: no
    # training curve (evaluating every training row each round costs a sort of the whole
    # partition per round for aucpr).
    train_curve_rows: int = Field(2000, ge=0)
    seed: int = 7


class TrackingConfig(Frozen):
    tracking_uri: str | None = None  # default: sqlite:///<storage.root>/mlflow.db
    experiment: str = "lakeboost"
    registered_model: str = "lakeboost"


class PromotionConfig(Frozen):
    """A challenger replaces the champion only if it beats it on the same snapshot by min_gain."""

    metric: str | None = None  # default: the objective's (lakeboost.config.metrics)
    min_gain: float = 0.0


class TrainingConfig(Frozen):
    model: ModelConfig = ModelConfig()
    split: SplitConfig = SplitConfig()
    imbalance: ImbalanceConfig = ImbalanceConfig()
    threshold: ThresholdConfig = ThresholdConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    cross_validation: CrossValidationConfig = CrossValidationConfig()
    tracking: TrackingConfig = TrackingConfig()
    tune: TuneConfig | None = None  # set to tune before the final fit
    promotion: PromotionConfig = PromotionConfig()
    # Refuse to start when the estimated training matrix per worker exceeds this share of
    # the memory each worker's executor has.
    max_memory_fraction: float = Field(0.5, gt=0, le=1)
