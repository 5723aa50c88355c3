"""The model as one object: what training fits and every predicting step uses.

- `meta.py`: ModelMeta, the metadata stored with the booster (features, encodings, threshold,
  objective, lineage, the dataset description, the calibrator);
- `encodings.py`, `calibrator.py`: what scoring applies (fitted in lakeboost.train);
- `loss.py`: a regression model's loss model, what monitoring applies to estimate a window's
  error before its labels (fitted in lakeboost.train.loss);
- `artifact.py`: the model's files in its MLflow run (log_model, load_artifacts);
- `registry.py`: versions, aliases (champion, challenger) and the champion history;
- `tracking.py`: the MLflow store the config names (use_tracking);
- `loaded.py`: Model, a loaded version with `predict`, the one prediction path of batch and
  stream scoring, promotion and monitoring; `load_model(name, ref)`.

Scoring, promotion, monitoring and tuning import this package, never lakeboost.train.
"""

from lakeboost.model.loaded import SCORED_FEATURES, Model, load_model, model_tags
from lakeboost.model.meta import ModelMeta
from lakeboost.model.registry import CHALLENGER, CHAMPION
from lakeboost.model.tracking import use_tracking

__all__ = ["CHALLENGER", "CHAMPION", "SCORED_FEATURES", "Model", "ModelMeta", "load_model", "model_tags",
           "use_tracking"]
