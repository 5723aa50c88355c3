"""Search spaces from config to hyperopt, and trial values back to xgboost parameters."""

from __future__ import annotations

import math
from typing import Any

from hyperopt import hp

from lakeboost.config.tuning import SearchParam

INTEGER_PARAMS = {"max_depth", "max_bin", "max_leaves", "n_estimators", "num_parallel_tree"}


def hyperopt_space(space: dict[str, SearchParam]) -> dict[str, Any]:
    dimensions: dict[str, Any] = {}
    for name, param in space.items():
        if param.kind == "uniform":
            dimensions[name] = hp.uniform(name, param.low, param.high)
        elif param.kind == "loguniform":
            dimensions[name] = hp.loguniform(name, math.log(param.low), math.log(param.high))
        elif param.kind == "quniform":
            dimensions[name] = hp.quniform(name, param.low, param.high, param.q)
        else:
            dimensions[name] = hp.choice(name, list(param.options))
    return dimensions


def to_xgboost_params(values: dict[str, Any]) -> dict[str, Any]:
    """hyperopt returns floats for quantised dimensions; xgboost wants ints for some."""
    return {k: int(round(v)) if k in INTEGER_PARAMS and isinstance(v, float) else v for k, v in values.items()}
