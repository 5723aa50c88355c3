"""The metrics lakeboost computes: which objectives they apply to and which way is better."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ObjectiveKind = Literal["binary", "multiclass", "regression"]


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    objectives: frozenset[str]


def _m(name: str, higher: bool, *kinds: str) -> Metric:
    return Metric(name, higher, frozenset(kinds))


METRICS: dict[str, Metric] = {m.name: m for m in (
    _m("pr_auc", True, "binary"), _m("roc_auc", True, "binary"), _m("f1", True, "binary"),
    _m("precision", True, "binary"), _m("recall", True, "binary"), _m("brier", False, "binary"),
    _m("accuracy", True, "binary", "multiclass"), _m("log_loss", False, "binary", "multiclass"),
    _m("macro_f1", True, "multiclass"),
    _m("rmse", False, "regression"), _m("mae", False, "regression"), _m("r2", True, "regression"),
)}


def objective_kind(objective: str) -> ObjectiveKind:
    if objective.startswith("binary:"):
        return "binary"
    if objective.startswith("multi:"):
        return "multiclass"
    return "regression"


def metric_problem(name: str, objective: str) -> str | None:
    """Why `name` cannot be used with `objective`, or None when it can."""
    kind = objective_kind(objective)
    if name not in METRICS:
        return f"unknown metric {name!r}; known: {sorted(METRICS)}"
    if kind not in METRICS[name].objectives:
        fitting = sorted(m.name for m in METRICS.values() if kind in m.objectives)
        return f"metric {name!r} does not apply to a {kind} objective ({objective}); use one of {fitting}"
    return None


def improvement(name: str, new: float, old: float) -> float:
    """How much better `new` is than `old` on metric `name` (positive: better)."""
    return new - old if METRICS[name].higher_is_better else old - new


DEFAULT_METRIC: dict[str, str] = {"binary": "pr_auc", "multiclass": "log_loss", "regression": "rmse"}


def metric_for(configured: str | None, objective: str) -> str:
    """The configured metric, or the objective's default (PR AUC, log loss, RMSE)."""
    return configured or DEFAULT_METRIC[objective_kind(objective)]
