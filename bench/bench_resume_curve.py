"""What the training curve costs one xgboost worker, without Spark's noise: boosting with and without
the curve's sample watched every round, side by side.

    .venv/bin/python bench/bench_resume_curve.py [--rows 400000] [--features 40] [--rounds 100]
        [--curve-rows 2000] [--repeats 3]

One worker's share of a 1M-row fit (400k training rows, 100k validation rows, 40 features, the
demo's booster parameters, aucpr, one thread as on local[2] with two workers): the matrices as
worker_files.fit_matrices builds them (with `curve_rows`, the sample DMatrix too, timed apart), then
`--rounds` rounds of xgboost.train watching the validation rows only ("without") or the sample as
"training" and the validation rows ("with"), alternating `--repeats` times. Prints each fit's
seconds, the medians' ratio and the sample build's seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import xgboost
from lakeboost.borrowed.xgboost_spark import TRAIN_CURVE_SAMPLE
from lakeboost.train.worker_files import fit_matrices


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, default in (("--rows", 400_000), ("--features", 40), ("--rounds", 100), ("--curve-rows", 2000),
                          ("--repeats", 3)):
        parser.add_argument(name, type=int, default=default)
    args = parser.parse_args()
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    print(f"machine: cores={os.cpu_count()} load={'/'.join(f'{v:.2f}' for v in os.getloadavg())} (shared)", flush=True)
    rng = np.random.default_rng(0)
    n = args.rows + args.rows // 4
    columns = {f"f{i}": rng.random(n, dtype=np.float32) for i in range(args.features)}
    logit = -4 + 4 * columns["f0"] + 2 * columns["f1"] * columns["f2"] + columns["f3"]
    columns["label"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int32)
    columns["valid"] = np.arange(n) >= args.rows
    names = {"label": "label", "validationIndicator": "valid"}
    features = [f"f{i}" for i in range(args.features)]
    kwargs = {"nthread": 1, "missing": np.nan}
    started = time.perf_counter()
    train, valid = fit_matrices(columns.__getitem__, features, names, kwargs, has_validation_col=True)
    plain_build = time.perf_counter() - started
    started = time.perf_counter()
    train_c, valid_c = fit_matrices(columns.__getitem__, features, names, kwargs, has_validation_col=True,
                                    curve_rows=args.curve_rows)
    curve_build = time.perf_counter() - started
    print(f"matrices    without_seconds={plain_build:.2f} with_seconds={curve_build:.2f} "
          f"(+{curve_build - plain_build:.2f} s for the {args.curve_rows}-row sample)", flush=True)
    params = {"objective": "binary:logistic", "tree_method": "hist", "eval_metric": "aucpr", "nthread": 1, "seed": 7,
              "max_depth": 5, "eta": 0.1, "subsample": 0.9, "colsample_bytree": 0.8}
    seconds: dict[str, list[float]] = {"without": [], "with": []}
    for repeat in range(args.repeats):
        for name, evals in (("without", [(valid, "validation")]),
                            ("with", [(getattr(train_c, TRAIN_CURVE_SAMPLE), "training"), (valid_c, "validation")])):
            matrix = train if name == "without" else train_c
            started = time.perf_counter()
            xgboost.train(params, matrix, args.rounds, evals=evals, verbose_eval=False)
            seconds[name].append(time.perf_counter() - started)
            print(f"{name:<8} repeat={repeat} seconds={seconds[name][-1]:.2f} "
                  f"load={os.getloadavg()[0]:.2f}", flush=True)
    without, with_curve = statistics.median(seconds["without"]), statistics.median(seconds["with"])
    print(f"ratio (medians) with/without={with_curve / without:.3f} ({with_curve - without:+.2f} s over "
          f"{args.rounds} rounds, {1000 * (with_curve - without) / args.rounds:+.2f} ms per round)", flush=True)


if __name__ == "__main__":
    main()
