"""The model's metadata: what scoring needs besides the booster, stored as `lakeboost_model.json`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from lakeboost.config.dataset import DatasetConfig
from lakeboost.errors import ModelFormatError

# Fields added since models were first stored, written only when set: the metadata of a model
# without one (every binary model, a regression model with monitor.estimate_loss off) stays
# readable by the lakeboost before the field, whose `ModelMeta(**json)` refuses a keyword it does
# not know (a newer training job beside an older scoring job).
_WRITTEN_WHEN_SET = ("loss_model",)


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
        stored = {k: v for k, v in self.__dict__.items() if not (k in _WRITTEN_WHEN_SET and v is None)}
        return json.dumps(stored, sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> ModelMeta:
        """The metadata in `text`; a field an older lakeboost did not write takes its default.

        Raises:
            ModelFormatError: `text` has fields this lakeboost does not know (a newer one wrote it).
        """
        stored = json.loads(text)
        unknown = sorted(set(stored) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ModelFormatError(f"lakeboost_model.json has fields this lakeboost does not know: {unknown}; "
                                   "the model was trained by a newer lakeboost: upgrade the job that loads it")
        return cls(**stored)

    @property
    def dataset_config(self) -> DatasetConfig:
        """The dataset description the model was trained with (its key, times and label)."""
        return DatasetConfig.model_validate(self.dataset)
