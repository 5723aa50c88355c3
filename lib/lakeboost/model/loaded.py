"""A registered model version loaded for scoring, and its one prediction path.

Batch scoring, stream scoring, promotion and monitoring all predict through `Model.predict`: the
same feature check, encodings, calibrator and threshold, so no step can drift from another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakeboost.config.dataset import DatasetConfig
from lakeboost.config.metrics import objective_kind
from lakeboost.errors import ScoringError
from lakeboost.model.artifact import load_artifacts
from lakeboost.model.calibrator import Calibrator
from lakeboost.model.encodings import apply_encodings
from lakeboost.model.meta import ModelMeta
from lakeboost.model.registry import CHAMPION, resolve_version, run_of

# The model's inputs as scored, kept with each prediction (inference-table style): the live
# path computes its window features on the fly, so this is the only record of what it saw.
SCORED_FEATURES = "scored_features"


@dataclass(frozen=True)
class Model:
    """Version `version` of the registered model `name`, logged by run `run_id`."""

    name: str
    version: int
    run_id: str
    model: Any  # SparkXGBClassifierModel / SparkXGBRegressorModel
    meta: ModelMeta

    @property
    def dataset(self) -> DatasetConfig:
        """The dataset description the model was trained with (its key, times and label)."""
        return self.meta.dataset_config

    def predict(self, rows: DataFrame, *, keep: tuple[str, ...] | None = None,
                with_features: bool = False) -> DataFrame:
        """`keep` columns (default: the model's event key) plus score, predicted_label, threshold,
        model name and version; with `with_features`, also `scored_features`: a struct of the model's
        inputs as they were scored (before encoding), which the monitor compares with training.

        Binary: `score` is the positive class's calibrated probability and `predicted_label`
        applies the model's threshold. Multiclass: `probabilities` (one per class) is added, `score` is the
        predicted class's probability and `predicted_label` that class; no threshold. Regression:
        `score` is the predicted value; no label, no threshold.
        """
        meta = self.meta
        # A key column may also be the event time (one row per hour, say): each column once.
        keep = tuple(dict.fromkeys(self.dataset.key if keep is None else keep))
        missing = [c for c in meta.features if c not in rows.columns]
        if missing:
            raise ScoringError(f"model {self.name} v{self.version} expects features {missing}, which the "
                               f"input lacks; it has {sorted(rows.columns)}. Rebuild gold features with the "
                               "definitions the model was trained on, or score with a matching model")
        inputs = rows.select(*dict.fromkeys([*keep, *meta.features]))
        if with_features:  # captured before the encodings replace categories by frequencies
            keep = (*keep, SCORED_FEATURES)
            inputs = inputs.withColumn(SCORED_FEATURES, F.struct(*[F.col(f"`{f}`") for f in meta.features]))
        scored = self.model.transform(apply_encodings(inputs, meta.encodings, meta.categorical_encoding))
        score, label, threshold, extra = self._outputs()
        return scored.select(
            *keep, score.alias("score"), label.alias("predicted_label"), threshold.alias("threshold"), *extra,
            F.lit(self.name).alias("model_name"), F.lit(self.version).alias("model_version"),
        )

    def _outputs(self) -> tuple[Column, Column, Column, list[Column]]:
        """(score, predicted label, threshold, extra columns) over the booster's output columns."""
        kind = objective_kind(self.meta.objective)
        if kind == "binary":
            cut = self.meta.threshold if self.meta.threshold is not None else 0.5
            score = vector_to_array(F.col("probability"))[1]
            calibrator = Calibrator.from_dict(self.meta.calibration)
            if calibrator is not None:  # the threshold was chosen on calibrated scores
                score = calibrator.column(score)
            return score, (score >= F.lit(cut)).cast("int"), F.lit(cut), []
        no_threshold = F.lit(None).cast("double")
        if kind == "multiclass":
            probabilities = vector_to_array(F.col("probability"))
            label = F.col("prediction").cast("int")
            return F.element_at(probabilities, label + 1), label, no_threshold, [probabilities.alias("probabilities")]
        return F.col("prediction").cast("double"), F.lit(None).cast("int"), no_threshold, []


def load_model(name: str, ref: str = CHAMPION) -> Model:
    """The registered version `ref` (an alias or a version number) of `name`, ready to predict.

    Raises:
        ModelNotFoundError: no such alias or version, or a version without an MLflow run.
    """
    version = resolve_version(name, ref)
    run_id = run_of(name, version)
    model, meta = load_artifacts(run_id)
    return Model(name, version, run_id, model, meta)


def model_tags(model: Model) -> dict[str, str]:
    """Tags that link a run (scoring, monitoring) to the model version it used and the run that
    trained it, so MLflow's search (`tags.model_version = '3'`) finds every run of a version."""
    return {"model_name": model.name, "model_version": str(model.version), "model_run_id": model.run_id}
