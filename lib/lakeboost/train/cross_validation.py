"""Cross-validation over train + validation: how much a model's validation metric depends on
which slice of time (or which rows) it was validated on.

One fit per fold, each exactly as the final fit (class weights, down-sampling, frequency
encodings fitted on the fold's training rows, early stopping on the fold's validation rows).
The test split is never read. Folds are described in `lakeboost.features.splits.with_fold_blocks`.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from typing import Any

from lakeboost.config.training import TrainingConfig
from lakeboost.features.splits import FOLD_BLOCK, fold_split, split_examples, with_fold_blocks
from lakeboost.features.training_set import TrainingSet
from lakeboost.train.trainer import train_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CrossValidation:
    folds: list[dict[str, float]]  # per fold: validation metrics, rounds, train/valid rows

    def mean(self, metric: str) -> float:
        return statistics.fmean(f[metric] for f in self.folds)

    def std(self, metric: str) -> float:
        return statistics.stdev(f[metric] for f in self.folds)

    def as_metrics(self) -> dict[str, float]:
        """Flat MLflow metrics: cv_<metric>_mean / _std, and cv_fold<i>_<metric>."""
        names = [k for k, v in self.folds[0].items() if isinstance(v, float) and k not in ("train_rows", "valid_rows")]
        out = {f"cv_{name}_{stat}": getattr(self, stat)(name) for name in names for stat in ("mean", "std")}
        out.update({f"cv_fold{i}_{name}": fold[name] for i, fold in enumerate(self.folds) for name in names})
        return out


def cross_validate(training: TrainingSet, cfg: TrainingConfig, *,
                   param_overrides: dict[str, Any] | None = None) -> CrossValidation:
    folds = cfg.cross_validation.folds
    numbered = with_fold_blocks(split_examples(training, cfg), cfg=cfg.split, folds=folds, key=training.key,
                                time_column=training.event_time).persist()
    results = []
    try:
        for fold in range(folds):
            splits = fold_split(numbered, kind=cfg.split.kind, fold=fold).drop(FOLD_BLOCK)
            result = train_model(training, cfg, param_overrides=param_overrides, evaluate_test=False,
                                 splits=splits)
            result.release()
            rows = {split: sum(result.split_counts.get(split, {}).values()) for split in ("train", "valid")}
            metrics = {name: float(v) for name, v in result.metrics["valid"].items() if isinstance(v, (int, float))}
            results.append({**metrics, "rounds": float(result.rounds), "train_rows": float(rows["train"]),
                            "valid_rows": float(rows["valid"])})
            log.info("cross-validation fold %d/%d: %s", fold + 1, folds, results[-1])
    finally:
        numbered.unpersist()
    return CrossValidation(results)

