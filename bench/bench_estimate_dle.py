"""DLE (direct loss estimation) on real data: the bike-rental application's regression model
(examples/bike_rentals, UCI Bike Sharing hourly counts), its loss model (lakeboost.train.loss,
what training stores with the model) fitted on the validation split, MAE and RMSE estimated per
week of the test split (Nov 15 - Dec 31 2012, holidays included) before their labels, against the
realized values: how many weeks' realized value lies inside the 95% interval.

    .venv/bin/python bench/bench_estimate_dle.py [--work /tmp/lb-est-bikes]

Builds the application's lakehouse under WORK once (ingest..promote), then reads gold.training_set.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from lakeboost.config import load_config
from lakeboost.features.splits import assign_splits
from lakeboost.io import TableCatalog
from lakeboost.model import CHAMPION, load_model, use_tracking
from lakeboost.model.encodings import apply_encodings
from lakeboost.model.loss import LossModel
from lakeboost.monitor.estimate import dle_by_window
from lakeboost.monitor.performance import WINDOW, window_start
from lakeboost.pipeline import run_pipeline
from lakeboost.spark import build_spark
from lakeboost.train.loss import fit_loss_model
from pyspark.sql import functions as F

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "examples" / "bike_rentals"
CACHE = Path(os.environ.get("LAKEBOOST_CACHE", Path.home() / ".cache" / "lakeboost")) / "bikeshare"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", default="/tmp/lb-est-bikes")
    args = parser.parse_args()
    work = Path(args.work)
    import importlib.util

    spec = importlib.util.spec_from_file_location("prepare", APP / "prepare.py")
    assert spec is not None and spec.loader is not None
    prepare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    config = load_config("local", [f"storage.root={work}/lake", f"storage.landing={work}/landing"],
                         conf_dir=APP / "conf", environ={"BIKES_JDBC_URL": f"jdbc:sqlite:{work}/landing/calendar.db"})
    spark = build_spark(config.spark, app_name="lakeboost-bench-dle")
    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 cores, shared)")
    if not (work / "lake" / "gold" / "training_set").exists():
        prepare.prepare(work / "landing", cache=CACHE)
        run_pipeline(spark, config, ["ingest", "refine", "features", "train", "promote"])
    use_tracking(config)
    champion = load_model(config.training.tracking.registered_model, CHAMPION)
    dataset = champion.dataset
    label = dataset.label.column
    examples = TableCatalog(spark, config.storage).read("gold.training_set")
    split = assign_splits(examples, cfg=config.training.split, label=label, key=dataset.key,
                          time_column=dataset.event_time)
    keep = tuple(dict.fromkeys([*dataset.key, dataset.event_time, label, "split"]))
    meta = champion.meta
    # The rows as the monitor reads them: the inputs as scored, encoded as the booster reads them.
    inputs = [F.col(f"scored_features.`{f}`").alias(f) for f in meta.features]
    scored = apply_encodings(champion.predict(split, keep=keep, with_features=True).select(*keep, "score", *inputs),
                             meta.encodings, meta.categorical_encoding).persist()
    validation, test = scored.where("split = 'valid'"), scored.where("split = 'test'")
    validation.count()
    stored = LossModel.from_dict(meta.loss_model)
    started, cpu = time.monotonic(), time.process_time()
    model = fit_loss_model(validation, features=meta.features, label=label, prediction="score",
                           order=dataset.event_time)
    fitted, fitted_cpu = time.monotonic() - started, time.process_time() - cpu
    started = time.monotonic()
    estimates = dle_by_window(test.drop(label), model, event_time=dataset.event_time, window="week")
    applied = time.monotonic() - started
    err = F.col("score") - F.col(label).cast("double")
    realized = {r[WINDOW]: r for r in test.groupBy(window_start(dataset.event_time, "week").alias(WINDOW))
                .agg(F.avg(F.abs(err)).alias("mae"), F.sqrt(F.avg(err * err)).alias("rmse")).collect()}
    print(f"model v{champion.version} (loss model stored with it: {'yes' if stored else 'no'}); "
          f"{len(model.inputs)} numeric inputs of {len(meta.features)}; loss model fitted on "
          f"{model.validation['rows']:.0f} validation rows in {fitted:.2f} s ({fitted_cpu:.2f} s driver CPU; "
          f"validation MAE {model.validation['mae']:.2f}, RMSE {model.validation['rmse']:.2f}); "
          f"dle_by_window {applied:.1f} s")
    print(f"{'week':<11}{'rows':>5} {'metric':<6}{'estimate':>9} {'95% interval':<18}{'realized':>9}"
          f"{'error':>8} inside")
    inside: dict[str, int] = {}
    for e in estimates:
        value = realized[e.window_start][e.metric]
        assert e.estimate is not None and e.low is not None and e.high is not None
        hit = e.low <= value <= e.high
        inside[e.metric] = inside.get(e.metric, 0) + hit
        print(f"{e.window_start:%Y-%m-%d} {e.rows:>5} {e.metric:<6}{e.estimate:>9.2f} [{e.low:6.2f}, {e.high:6.2f}]"
              f"{value:>9.2f}{e.estimate - value:>+8.2f} {'yes' if hit else 'NO'}")
    weeks = len(estimates) // 2
    print("inside the interval: " + ", ".join(f"{m.upper()} {n} of {weeks}" for m, n in inside.items()))
    scored.unpersist()
    spark.stop()


if __name__ == "__main__":
    main()
