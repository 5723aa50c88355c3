"""The three applications' results, for a before/after comparison of a refactor.

    .venv/bin/python bench/bench_equality.py --out before.json [--work /tmp/lakeboost-equality]
    .venv/bin/python bench/bench_equality.py --compare before.json after.json

Runs the card-fraud demo (12k rows, as the suite's demo), the bike-rental application (its real
public data) and the deliveries application from raw files to a scored, monitored model, each in
a fresh lakehouse, in one Spark session; then writes, per application, every Delta table's row
count and the test metrics of the trained model. `--compare` prints the differences (none:
exit 0). Model metrics are compared to 1e-9: a fit is deterministic on one machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = ["demo.rows=12000", "demo.days=120", "training.model.n_estimators=120",
        "training.model.params={max_depth: 4, learning_rate: 0.1}", "monitor.min_window_rows=100"]


def _load(path: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tables(spark, root: Path) -> dict[str, int]:
    counts = {}
    for log in sorted(root.rglob("_delta_log")):
        table = log.parent
        if any(part.startswith("_") for part in table.relative_to(root).parts):
            continue  # checkpoints and state stores
        counts[str(table.relative_to(root))] = spark.read.format("delta").load(str(table)).count()
    return counts


def _apps(work: Path):
    from lakeboost.config import load_config

    cache = Path(os.environ.get("LAKEBOOST_CACHE", Path.home() / ".cache" / "lakeboost")) / "bikeshare"
    steps = ["ingest", "refine", "features", "train", "promote", "score", "monitor"]

    def demo():
        root = work / "card_fraud"
        return load_config("local", [f"storage.root={root}/lake", f"storage.landing={root}/landing", *DEMO],
                           conf_dir=REPO / "conf",
                           environ={"CUSTOMERS_JDBC_URL": f"jdbc:sqlite:{root}/landing/customers.db"}), None

    def bikes():
        root = work / "bike_rentals"
        _load(REPO / "examples/bike_rentals/prepare.py").prepare(root / "landing", cache=cache)
        return load_config("local", [f"storage.root={root}/lake", f"storage.landing={root}/landing"],
                           conf_dir=REPO / "examples/bike_rentals/conf",
                           environ={"BIKES_JDBC_URL": f"jdbc:sqlite:{root}/landing/calendar.db"}), steps

    def deliveries():
        root = work / "deliveries"
        _load(REPO / "examples/deliveries/prepare.py").prepare(root / "landing", orders=2000, seed=5)
        return load_config("local", [f"storage.root={root}/lake", f"storage.landing={root}/landing",
                                     "training.model.n_estimators=40"],
                           conf_dir=REPO / "examples/deliveries/conf",
                           environ={"SHOPS_JDBC_URL": f"jdbc:sqlite:{root}/landing/shops.db"}), steps

    return {"card_fraud": demo, "bike_rentals": bikes, "deliveries": deliveries}


def run(out: Path, work: Path) -> None:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("LAKEBOOST_PII_KEY", "bench-only-key-0123456789abcdef")
    from lakeboost.config import load_config
    from lakeboost.pipeline import run_pipeline, select_steps
    from lakeboost.spark import build_spark

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work}/mlflow.db"
    spark = build_spark(load_config("local", conf_dir=REPO / "conf").spark, app_name="lakeboost-equality",
                        extra_conf={"spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false",
                                    "spark.sql.session.timeZone": "UTC"})
    results = {}
    for name, make in _apps(work).items():
        config, steps = make()
        os.environ["MLFLOW_EXPERIMENT_NAME"] = name
        summary = run_pipeline(spark, config, steps or select_steps(config))
        metrics = summary.details["train"]["metrics"]
        results[name] = {"tables": _tables(spark, Path(config.storage.root)),
                         "test_metrics": metrics.get("test", {}),
                         "rounds": summary.details["train"].get("rounds")}
        print(name, json.dumps(results[name], default=str), flush=True)
    out.write_text(json.dumps(results, indent=1, sort_keys=True, default=str))
    spark.stop()


def compare(before: Path, after: Path) -> int:
    a, b = json.loads(before.read_text()), json.loads(after.read_text())
    differences = 0
    for app in sorted(set(a) | set(b)):
        left, right = a.get(app, {}), b.get(app, {})
        for table in sorted(set(left.get("tables", {})) | set(right.get("tables", {}))):
            x, y = left.get("tables", {}).get(table), right.get("tables", {}).get(table)
            mark = "" if x == y else "  <-- differs"
            differences += bool(mark)
            print(f"{app:<13} {table:<40} {x!s:>8} {y!s:>8}{mark}")
        for metric in sorted(set(left.get("test_metrics", {})) | set(right.get("test_metrics", {}))):
            x, y = left.get("test_metrics", {}).get(metric), right.get("test_metrics", {}).get(metric)
            same = (isinstance(x, float) and isinstance(y, float) and (math.isclose(x, y, abs_tol=1e-9)
                                                                       or (math.isnan(x) and math.isnan(y))))
            mark = "" if same or x == y else "  <-- differs"
            differences += bool(mark)
            print(f"{app:<13} test {metric:<35} {x!s:>20} {y!s:>20}{mark}")
    print(f"{differences} differences")
    return 1 if differences else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--work", type=Path, default=Path("/tmp/lakeboost-equality"))
    parser.add_argument("--compare", nargs=2, type=Path)
    args = parser.parse_args()
    if args.compare:
        return compare(*args.compare)
    run(args.out, args.work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
