"""The batched search on a real function: budgets, reproducibility, best kept."""

from __future__ import annotations

import math

from lakeboost.config.tuning import SearchParam
from lakeboost.tune.search import TrialOutcome, run_search
from lakeboost.tune.space import hyperopt_space

SPACE = hyperopt_space({
    "x": SearchParam(kind="uniform", low=-5, high=5),
    "max_depth": SearchParam(kind="quniform", low=2, high=8, q=1),
    "c": SearchParam(kind="choice", options=("a", "b")),
})


def peak(batch):
    """A smooth function with its maximum 1.0 at x=1.5, depth 6, c='b'."""
    return [TrialOutcome(metric=math.exp(-(p["x"] - 1.5) ** 2) - 0.05 * abs(p["max_depth"] - 6)
                         - (0.1 if p["c"] == "a" else 0.0), rounds=10) for p in batch]


def test_same_seed_proposes_the_same_sequence() -> None:
    first = run_search(peak, SPACE, algo="tpe", seed=3, batch_size=2, max_evals=12)
    second = run_search(peak, SPACE, algo="tpe", seed=3, batch_size=2, max_evals=12)
    other = run_search(peak, SPACE, algo="tpe", seed=4, batch_size=2, max_evals=12)
    assert [t["params"] for t in first.trials] == [t["params"] for t in second.trials]
    assert [t["params"] for t in first.trials] != [t["params"] for t in other.trials]
    assert isinstance(first.trials[0]["params"]["max_depth"], int)


def test_max_evals_budget_and_best_is_kept() -> None:
    result = run_search(peak, SPACE, algo="random", seed=1, batch_size=3, max_evals=7)
    assert len(result.trials) == 7 and result.stop_reason == "max_evals=7 reached"
    assert result.best["metric"] == max(t["metric"] for t in result.trials)
    assert result.best_so_far() == sorted(result.best_so_far())


def test_no_improvement_budget_stops_the_search() -> None:
    seen: list[int] = []

    def first_is_best(batch):
        outcome = TrialOutcome(metric=0.0 if seen else 1.0)
        seen.append(1)
        return [outcome]

    result = run_search(first_is_best, SPACE, algo="random", seed=1, batch_size=1, max_evals=50,
                        no_improvement_trials=4)
    assert len(result.trials) == 5 and result.stop_reason == "no improvement in 4 trials"


class FakeClock:
    """Seconds that pass only when a trial says so: the timeout budget without real time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_timeout_budget_stops_between_batches_once_the_clock_passes_it() -> None:
    clock = FakeClock()
    batches: list[int] = []

    def ten_seconds_a_batch(batch):
        batches.append(len(batch))
        clock.now += 10.0
        return peak(batch)

    # Elapsed before each batch: 0, 10, 20 (< 25: run it), 30 (stop). The started batch finishes.
    result = run_search(ten_seconds_a_batch, SPACE, algo="tpe", seed=1, batch_size=2, max_evals=100,
                        timeout_seconds=25.0, clock=clock)
    assert batches == [2, 2, 2] and len(result.trials) == 6
    assert result.stop_reason == "timeout of 25s reached" and result.seconds == 30.0

    # A budget the first batch already spends: one batch, whatever the machine's speed.
    clock.now, batches[:] = 0.0, []
    result = run_search(ten_seconds_a_batch, SPACE, algo="tpe", seed=1, batch_size=3, max_evals=100,
                        timeout_seconds=10.0, clock=clock)
    assert batches == [3] and result.stop_reason == "timeout of 10s reached"
    # Without a timeout the same search runs to max_evals.
    result = run_search(ten_seconds_a_batch, SPACE, algo="tpe", seed=1, batch_size=3, max_evals=9, clock=clock)
    assert len(result.trials) == 9 and result.stop_reason == "max_evals=9 reached"


def test_failed_trials_are_recorded_and_do_not_win() -> None:
    def flaky(batch):
        return [TrialOutcome(metric=None, error="boom") if p["c"] == "a" else peak([p])[0] for p in batch]

    result = run_search(flaky, SPACE, algo="tpe", seed=2, batch_size=2, max_evals=10)
    assert any(t["error"] == "boom" for t in result.trials)
    assert result.best["params"]["c"] == "b"


def valley(batch):
    """An error to minimise (RMSE-like): its minimum 0.0 at x=-2."""
    return [TrialOutcome(metric=(p["x"] + 2) ** 2, rounds=10) for p in batch]


def test_a_lower_is_better_metric_is_minimised_and_its_best_is_the_lowest() -> None:
    result = run_search(valley, SPACE, algo="tpe", seed=2, batch_size=4, max_evals=32, higher_is_better=False)

    values = [t["metric"] for t in result.trials]
    assert result.best["metric"] == min(values)
    assert result.best_so_far() == sorted(result.best_so_far(), reverse=True)
    # TPE moved towards the valley: the second half of the trials is better than the first.
    assert sorted(values[16:])[8] < sorted(values[:16])[8] and result.best["metric"] < 0.5


def test_single_node_metrics_match_their_definitions() -> None:
    import numpy as np
    from lakeboost.tune.evaluators import native_metric

    y = np.array([0.0, 1.0, 1.0, 0.0])
    assert native_metric("rmse", y, np.array([0.0, 1.0, 0.0, 1.0])) == math.sqrt(0.5)
    assert native_metric("mae", y, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    assert native_metric("roc_auc", y, np.array([0.1, 0.9, 0.8, 0.2])) == 1.0
    probabilities = np.array([[0.8, 0.2], [0.1, 0.9], [0.6, 0.4], [0.7, 0.3]])
    assert native_metric("accuracy", y, probabilities) == 0.75
