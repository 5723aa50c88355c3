"""The model's metadata: what scoring needs besides the booster, stored as `lakeboost_model.json`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lakeboost.config.dataset import DatasetConfig


@dataclass(frozen=True)
class ModelMeta:
    """What scoring needs besides the booster: features, encodings, threshold, objective, the
    dataset description (key, times, label) the model was trained with, and the calibrator of
    its binary scores (the threshold applies to calibrated scores), or the loss model of its
    regression predictions (the monitor's estimate of a window's error before its labels)."""

    features: list[str]
    encodings: dict[str, dict[str, float]]
    threshold: float | None
    objective: str
    lineage: dict[str, Any]
    dataset: dict[str, Any]
    calibration: dict[str, Any] | None = None  # lakeboost.model.calibrator.Calibrator.to_dict()
    categorical_encoding: str = "frequency"  # what `encodings` hold: frequencies or native codes
    loss_model: dict[str, Any] | None = None  # lakeboost.model.loss.LossModel.to_dict()

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> ModelMeta:
        return cls(**json.loads(text))

    @property
    def dataset_config(self) -> DatasetConfig:
        """The dataset description the model was trained with (its key, times and label)."""
        return DatasetConfig.model_validate(self.dataset)
