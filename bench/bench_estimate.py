"""Estimated (CBPE, before labels) against realized (with the generator's true labels)
performance of the demo's champion on its live card events, per window, unshifted and shifted.

    .venv/bin/python bench/bench_estimate.py --rows 200000 --shifts 0 1.0 [--work /tmp/lb-est] [--windows week day]

Reads the lakehouses bench_estimate_build.py left under WORK/shift<S>/rows<N> (the pipeline up to
stream scoring, with `demo.shift=S`: live amounts x (1+S), foreign use x (1+5S), fraud decided by
the same logistic law of those amounts, so the shift's true effect is in truth/labels.parquet).
For each window: the estimate with its 95% interval (labels drawn Bernoulli(score)), the realized
value from the true labels (the monitor's own binned ROC / PR AUC), the error, whether the
realized value is inside the interval, and the decay alerts: the estimate's is known when the
window ends, the labels' once they mature (`monitor.label_maturity` later).
"""

from __future__ import annotations

import datetime as dt
import os
import time

import numpy as np
from _common import bench_arguments, bench_config  # bench/ is the script's directory
from card_fraud.generator import MIN_CARD_EVENTS, _dimensions, _start_epoch
from card_fraud.job import DemoConfig
from card_fraud.scenario import FRAUD, HIGH_RISK_CATEGORIES
from card_fraud.simulate import DAY, Traffic, _behave, _draw_keys, _place
from card_fraud.sources import CARD_EVENT_DAYS
from lakeboost.io.catalog import TableCatalog
from lakeboost.metrics.base import LABEL
from lakeboost.metrics.binary import score_bucket
from lakeboost.model import CHAMPION, load_model, use_tracking
from lakeboost.monitor.estimate import cbpe_by_window, cbpe_from_cells, estimate_breached
from lakeboost.monitor.performance import WINDOW, decay_bound, performance_by_window, window_start
from lakeboost.spark import build_spark
from mlflow.tracking import MlflowClient
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

FAR = dt.datetime(2100, 1, 1)


def live_oracle(spark: SparkSession, demo: DemoConfig, shift: float) -> DataFrame:
    """txn_id, the generator's own fraud probability of each live card event (its noise integrated
    out), rebuilt as card_fraud.oracle does for the batch payments, with the live traffic's shift."""
    import tempfile
    from pathlib import Path

    from card_fraud.dimensions import Period

    period = Period(start=_start_epoch(demo.start_date), days=demo.days)
    with tempfile.TemporaryDirectory() as scratch:
        customers, merchants = _dimensions(demo.seed, demo.rows, period, Path(scratch))
    live = Traffic(seed=demo.seed, start=period.start, first_day=demo.days, n_days=CARD_EVENT_DAYS,
                   customers=len(customers.profile), merchants=len(merchants.profile), amount_factor=1.0 + shift,
                   foreign_share=min(0.6, FRAUD.foreign_share * (1.0 + 5.0 * shift)))
    n_events = max(MIN_CARD_EVENTS, demo.rows * CARD_EVENT_DAYS // demo.days)
    events = (_draw_keys(spark.range(demo.rows, demo.rows + n_events), live)
              .join(F.broadcast(spark.createDataFrame(customers.profile)), on="customer_id", how="inner")
              .join(F.broadcast(spark.createDataFrame(merchants.profile)), on="merchant_idx", how="inner")
              .transform(_place, traffic=live).transform(_behave, traffic=live))
    m, night = FRAUD, F.pmod(F.col("local_ts"), DAY) < 6 * 3600
    logit = (F.lit(m.intercept) + m.amount_ratio * F.greatest(F.col("log_ratio"), F.lit(0.0))
             + m.foreign * F.col("is_foreign").cast("double")
             + m.high_risk * F.col("category").isin(*HIGH_RISK_CATEGORIES).cast("double")
             + m.night * night.cast("double") + m.online * (F.col("channel") == "online").cast("double"))
    nodes, weights = np.polynomial.hermite.hermgauss(20)
    expected = sum(float(w / np.sqrt(np.pi)) / (1.0 + F.exp(-(logit + float(m.noise_sd * np.sqrt(2) * x))))
                   for x, w in zip(nodes, weights, strict=True))
    return events.select(F.format_string("T%010d", F.col("id")).alias("txn_id"), expected.alias("oracle"))


def oracle_expected(labelled: DataFrame, *, event_time: str, window: str, threshold: float) -> dict:
    """(window, metric) -> the model's expected metric when the labels are drawn from the
    generator's true probability (`oracle`): CBPE's cells, the model's score buckets holding the
    true probability's sums. The label-noise-free truth an estimate from the model's own scores
    should reach; it differs from it only where the model is miscalibrated."""
    cells = (labelled.groupBy(window_start(event_time, window).alias(WINDOW), score_bucket("score", 1000).alias("b"),
                              (F.col("score") >= F.lit(threshold)).alias("above"))
             .agg(F.count(F.lit(1)).alias("n"), F.sum("oracle").alias("sp")).collect())
    by: dict = {}
    for c in cells:
        by.setdefault(c[WINDOW], []).append((int(c["b"]), bool(c["above"]), int(c["n"]), float(c["sp"])))
    rng = np.random.default_rng(0)
    return {(w, m): v[0] for w, group in by.items()
            for m, v in cbpe_from_cells(group, draws=20, level=0.95, rng=rng).items()}


def main() -> None:
    args = bench_arguments(__doc__ or "", lambda p: (
        p.add_argument("--shifts", type=float, nargs="+", default=[0.0, 1.0]),
        p.add_argument("--windows", nargs="+", default=["week", "day"]),
        p.add_argument("--draws", type=int, default=400),
        p.add_argument("--where", default=None,
                       help="keep only the live events where this SQL holds of their score or key: a "
                            "selection on the model's inputs leaves P(fraud | inputs) as it was (a covariate "
                            "shift the model stays calibrated under)"),
        p.add_argument("--drops", type=float, nargs="+", default=[0.25, 0.05],
                       help="relative ROC AUC drops to judge alerts at (the demo's monitor.max_relative_drop first)")))
    base, spark = args.work, None
    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 cores, shared)")
    for shift in args.shifts:
        args.work = f"{base}/shift{shift:g}"
        config, root = bench_config(args, [f"demo.shift={shift}"])
        if spark is None:
            spark = build_spark(config.spark, app_name="lakeboost-bench-estimate")
        use_tracking(config)
        champion = load_model(config.training.tracking.registered_model, CHAMPION)
        dataset, threshold = champion.dataset, champion.meta.threshold
        assert threshold is not None and config.scoring.stream is not None
        baseline = MlflowClient().get_run(champion.run_id).data.metrics.get("test_roc_auc_binned")
        assert baseline is not None, "the champion's run logged no test_roc_auc_binned"
        bound = decay_bound("roc_auc", baseline, config.monitor.max_relative_drop)
        catalog = TableCatalog(spark, config.storage)
        mine = (F.col("model_version") == champion.version) & (F.col("model_name") == champion.name)
        scored = catalog.read(config.scoring.stream.predictions_table).where(mine) \
            .select(*dataset.key, dataset.event_time, "score").where(args.where or "true").persist()
        truth = spark.read.parquet(f"{root}/landing/truth/labels.parquet") \
            .select(*dataset.key, F.col("is_fraud").cast("int").alias(LABEL))
        demo = config.sections.get("demo") or DemoConfig()
        labelled = (scored.join(truth, list(dataset.key), "inner")
                    .join(live_oracle(spark, demo, shift), list(dataset.key), "left").persist())
        only = f", only where {args.where}" if args.where else ""
        print(f"\n== shift {shift:g}{only}: {scored.count()} live predictions ({labelled.count()} with a true label), "
              f"model v{champion.version}, threshold {threshold:.3f}, training test ROC AUC {baseline:.4f}, "
              f"decay bound {bound:.4f} (relative drop {config.monitor.max_relative_drop:g}), "
              f"label maturity {config.monitor.label_maturity}")
        check = labelled.agg(F.avg("oracle").alias("p"), F.avg(LABEL).alias("y"),
                             F.sum(F.col("oracle").isNull().cast("int")).alias("missing")).first()
        assert check is not None and check["missing"] == 0, "a live event the oracle does not rebuild"
        print(f"generator's true probability: mean {check['p']:.4f} (true labels' rate {check['y']:.4f}); "
              f"model's mean score {labelled.agg(F.avg('score')).first()[0]:.4f}")
        for window in args.windows:
            started = time.monotonic()
            estimates = cbpe_by_window(scored, event_time=dataset.event_time, window=window, threshold=threshold,
                                       draws=args.draws)
            seconds = time.monotonic() - started
            est = {(e.window_start, e.metric): e for e in estimates}
            realized = {p.window_start: p for p in performance_by_window(
                labelled, event_time=dataset.event_time, window=window, as_of=FAR, maturity=dt.timedelta(0),
                min_rows=1, min_positives=1)}
            at = F.col("score") >= F.lit(threshold)
            tp = F.coalesce(F.sum(F.when(at, F.col(LABEL))), F.lit(0))
            confusion = {r[WINDOW]: r for r in labelled.groupBy(window_start(dataset.event_time, window).alias(WINDOW))
                         .agg(tp.alias("tp"), F.sum(at.cast("int")).alias("pp"), F.sum(LABEL).alias("p")).collect()}
            print(f"\n-- window {window}: cbpe_by_window {seconds:.2f} s ({args.draws} draws)")
            oracle = oracle_expected(labelled, event_time=dataset.event_time, window=window, threshold=threshold)
            print(f"{'window':<11}{'rows':>6}{'pos':>5} {'metric':<10}{'estimate':>9} {'95% interval':<17}"
                  f"{'realized':>9}{'error':>8} inside {'true-p exp.':>11}{'error':>8}")
            errors: dict[str, list[float]] = {}
            true_errors: dict[str, list[float]] = {}
            for start in sorted(realized):
                r, c = realized[start], confusion[start]
                truth_of = {"roc_auc": r.roc_auc, "pr_auc": r.pr_auc, "base_rate": r.base_rate,
                            "precision": c["tp"] / c["pp"] if c["pp"] else None,
                            "recall": c["tp"] / c["p"] if c["p"] else None}
                for metric, value in truth_of.items():
                    e = est[(start, metric)]
                    if e.estimate is None or value is None:
                        continue
                    err = e.estimate - value
                    errors.setdefault(metric, []).append(abs(err))
                    expected = oracle.get((start, metric))
                    if expected is not None:
                        true_errors.setdefault(metric, []).append(abs(e.estimate - expected))
                    inside = e.low is not None and e.high is not None and e.low <= value <= e.high
                    print(f"{start:%Y-%m-%d} {r.rows:>6}{r.positives:>5} {metric:<10}{e.estimate:>9.4f} "
                          f"[{e.low:.4f}, {e.high:.4f}]{value:>9.4f}{err:>+8.4f} {'yes' if inside else 'NO ':<6}"
                          + (f"{expected:>11.4f}{e.estimate - expected:>+8.4f}" if expected is not None else ""))
                e = est[(start, "roc_auc")]
                end = start + {"week": dt.timedelta(weeks=1), "day": dt.timedelta(days=1)}[window]
                maturity = config.monitor.label_maturity or dt.timedelta(0)
                for drop in args.drops:
                    b = decay_bound("roc_auc", baseline, drop)
                    fires = estimate_breached(e, b, higher_is_better=True)
                    confident = estimate_breached(e, b, higher_is_better=True, confident=True)
                    labels = r.roc_auc is not None and r.roc_auc < b
                    print(f"{'':<22}alert on ROC AUC < {b:.4f} (drop {drop:g}): estimate {fires!s:<5} "
                          f"(whole interval {confident!s:<5}) known {end:%Y-%m-%d}; labels {labels!s:<5} "
                          f"known {end + maturity:%Y-%m-%d}")
            print("max |estimate - realized| per metric: " + ", ".join(f"{m} {max(v):.4f}" for m, v in errors.items()))
            print("max |estimate - expected under the true probability| per metric: "
                  + ", ".join(f"{m} {max(v):.4f}" for m, v in true_errors.items()))
        scored.unpersist()
        labelled.unpersist()
    if spark is not None:
        spark.stop()


if __name__ == "__main__":
    main()
