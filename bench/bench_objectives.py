"""Every objective on the deliveries example, side by side: test metrics per objective, and the
binary model's Brier and expected calibration error before and after calibration.

    python bench/bench_objectives.py [--orders 3000] [--work /tmp/lakeboost-objectives]

Configuration only: the same prepared orders, the label swapped by --set (late: binary; the
delay in hours: regression; its band: multiclass). Prints one JSON line per objective.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import time
from pathlib import Path

from lakeboost.config import load_config
from lakeboost.logs import configure_logging
from lakeboost.pipeline import run_pipeline
from lakeboost.spark.session import build_spark

APP = Path(__file__).resolve().parents[1] / "examples" / "deliveries"
OBJECTIVES = {
    "binary": [],
    "regression": ["training.model.objective=reg:squarederror",
                   "dataset.label={kind: value, column: delay, expr: delay_hours, available_at: delivered_at}"],
    "multiclass": ["training.model.objective=multi:softprob",
                   "dataset.label={kind: value, column: band, available_at: delivered_at, "
                   "expr: 'CASE WHEN delay_hours < 48 THEN 0 WHEN delay_hours < 96 THEN 1 ELSE 2 END'}"],
}
SHOWN = ("rows", "roc_auc", "pr_auc", "base_rate", "brier", "raw_brier", "ece", "raw_ece", "rmse", "mae", "r2",
         "accuracy", "macro_f1", "log_loss")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--work", default="/tmp/lakeboost-objectives")
    args = parser.parse_args()
    configure_logging("WARNING")
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    spec = importlib.util.spec_from_file_location("deliveries_prepare", APP / "prepare.py")
    assert spec is not None and spec.loader is not None
    prepare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    prepare.prepare(work / "landing", orders=args.orders, seed=5)
    base = [f"storage.root={work}/lake", f"storage.landing={work}/landing"]
    environ = {"SHOPS_JDBC_URL": f"jdbc:sqlite:{work}/landing/shops.db"}
    config = load_config("local", base, conf_dir=APP / "conf", environ=environ)
    spark = build_spark(config.spark)
    run_pipeline(spark, config, ["ingest", "refine"])
    for objective, overrides in OBJECTIVES.items():
        config = load_config("local", [*base, *overrides, f"training.tracking.registered_model=objectives_{objective}"],
                             conf_dir=APP / "conf", environ=environ)
        started = time.monotonic()
        summary = run_pipeline(spark, config, ["features", "train", "promote", "score", "monitor"])
        test = summary.details["train"]["metrics"]["test"]
        print(json.dumps({"objective": objective, "seconds": round(time.monotonic() - started, 1),
                          **{k: round(float(v), 4) for k, v in test.items() if k in SHOWN}}), flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
