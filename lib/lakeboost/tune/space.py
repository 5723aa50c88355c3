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
        if param.kind == "choice":
            dimensions[name] = hp.choice(name, list(param.options))
            continue
        low, high = param.low, param.high
        assert low is not None and high is not None  # SearchParam's validator: low < high for these kinds
        if param.kind == "uniform":
            dimensions[name] = hp.uniform(name, low, high)
        elif param.kind == "loguniform":
            dimensions[name] = hp.loguniform(name, math.log(low), math.log(high))
        else:
            dimensions[name] = hp.quniform(name, low, high, param.q)
    return dimensions


def to_xgboost_params(values: dict[str, Any]) -> dict[str, Any]:
    """hyperopt returns floats for quantised dimensions; xgboost wants ints for some."""
    return {k: int(round(v)) if k in INTEGER_PARAMS and isinstance(v, float) else v for k, v in values.items()}
