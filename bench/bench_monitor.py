"""The monitor step alone, two versions of lakeboost side by side: wall and CPU seconds, Spark jobs.

    .venv/bin/python bench/bench_monitor.py --rows 12000 --a /tmp/wt/main-a --b . [--order ABBA]

Builds a demo lakehouse once under WORK/rowsN (the whole pipeline, with tree A's code, at the e2e
tests' settings: tests/conftest.py DEMO_OVERRIDES), then runs the monitor step on it once per
letter of --order, each in a fresh process with that tree's `lib` first on PYTHONPATH (A: main
at the branch point, B: the branch), after one untimed run that writes the records (later runs
upsert identical ones). Per run: wall seconds of the step, CPU seconds of the process tree
(the Python driver and the Spark JVM: user + system from /proc, the step only, not the JVM's
start), and the Spark jobs, stages and tasks the step ran (lakeboost.cost). The records each run
computed are compared with the warm-up's (A's): every record present in both, values equal to
1e-9 relative (a reordered float sum may move the last digits).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The e2e fixture's demo (tests/conftest.py DEMO_OVERRIDES): what every end-to-end test monitors.
DEMO = ["demo.days=120", "training.model.n_estimators=120", "training.model.params={max_depth: 4, learning_rate: 0.1}",
        "monitor.min_window_rows=100", "monitor.min_positive_labels=10"]


def _tree_cpu(root: int) -> float:
    """User + system CPU seconds of `root` and its live descendants (and the children they reaped)."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        cpu[pid] = sum(int(f) for f in fields[11:15]) / tick  # utime stime cutime cstime
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return total


def _threads_cpu(root: int) -> dict[str, float]:
    """CPU seconds of every thread of `root`'s descendant processes (the Spark JVM), summed by
    thread name with digits dropped ("C2 CompilerThread0" -> "C2 CompilerThread"): where the
    JVM's CPU goes (JIT, GC, executor tasks, the driver's planning threads)."""
    import re

    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]), []).append(
                    int(entry.name))
            except OSError:
                continue
    out: dict[str, float] = {}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                head, rest = (task / "stat").read_text().rsplit(")", 1)
            except OSError:
                continue
            name = re.sub(r"[0-9]+", "", head.split("(", 1)[1]).strip()
            fields = rest.split()
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def _config(work: Path, rows: int):
    from lakeboost.config import load_config

    os.environ.setdefault("LAKEBOOST_PII_KEY", "bench-only-key-0123456789abcdef")
    return load_config("local", [f"storage.root={work}/lake", f"storage.landing={work}/landing",
                                 f"demo.rows={rows}", *DEMO],
                       environ={**os.environ, "CUSTOMERS_JDBC_URL": f"jdbc:sqlite:{work}/landing/customers.db"})


def _spark(config):
    from lakeboost.spark import build_spark

    spark = build_spark(config.spark, app_name="lakeboost-bench-monitor",
                        extra_conf={"spark.ui.retainedJobs": "100000", "spark.ui.retainedStages": "100000"})
    spark.range(1).count()  # start-up (JVM, Delta, Python workers) is not the step's
    return spark


def child_build(work: Path, rows: int) -> None:
    from lakeboost.pipeline import run_pipeline, select_steps

    config = _config(work, rows)
    spark = _spark(config)
    summary = run_pipeline(spark, config, select_steps(config))
    details = {k: v for k, v in summary.details.items() if isinstance(v, dict)}
    (work / "built.json").write_text(json.dumps(details, default=str))
    spark.stop()


def child_monitor(work: Path, rows: int, out: Path, as_of: str) -> None:
    import mlflow
    from lakeboost.cost import CostMeter
    from lakeboost.io import TableCatalog
    from lakeboost.model.tracking import use_tracking
    from lakeboost.monitor.step import monitor_step

    config = _config(work, rows)
    spark = _spark(config)
    use_tracking(config)
    catalog = TableCatalog(spark, config.storage)
    threads0 = _threads_cpu(os.getpid())
    cpu0, own0, started = _tree_cpu(os.getpid()), time.process_time(), time.monotonic()
    profiler = None
    if os.environ.get("LAKEBOOST_BENCH_PROFILE"):  # cProfile of the driver's Python, dumped there
        import cProfile

        # The main thread's CPU, not wall time: py4j's and Spark's threads would be billed to
        # whatever the main thread was in when they ran.
        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
    with CostMeter(spark) as meter:
        summary = monitor_step(catalog, config, as_of=dt.datetime.fromisoformat(as_of))
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(os.environ["LAKEBOOST_BENCH_PROFILE"])
    wall, cpu, own = time.monotonic() - started, _tree_cpu(os.getpid()) - cpu0, time.process_time() - own0
    threads1 = _threads_cpu(os.getpid())
    jvm_threads = {k: round(v - threads0.get(k, 0.0), 2) for k, v in threads1.items() if v - threads0.get(k, 0.0) > 0}
    local = mlflow.artifacts.download_artifacts(summary.details["report_artifact"].replace(
        "monitor_report.html", "monitor_records.json"))
    out.write_text(json.dumps({"as_of": as_of, "wall": wall, "cpu": cpu, "python_cpu": own, "jvm_threads": jvm_threads,
                               "jobs": meter.report.jobs,
                               "stages": meter.report.stages, "tasks": meter.report.tasks,
                               "sites": _job_sites(spark, meter.report.stage_ids),
                               "records": json.loads(Path(local).read_text())}))
    spark.stop()


def _job_sites(spark, stage_ids: list[int]) -> dict[str, list[float]]:
    """Call site (`collect at measure.py:70`) -> [jobs, executor CPU seconds] of the step's jobs, from
    the status store lakeboost.cost reads (lakeboost/borrowed/jvm.py)."""
    from lakeboost.borrowed import jvm

    store = jvm.StatusStore(spark)
    ours = set(stage_ids)
    run_time = {int(s.stageId()): s.executorCpuTime() / 1e9 for s in jvm._newer_than(
        store._stages(), min(ours, default=0) - 1, jvm._stage_id)}
    sites: dict[str, list[float]] = {}
    for job in jvm._newer_than(store._jobs(), -1, jvm._job_id):
        stages, it = [], job.stageIds().iterator()
        while it.hasNext():
            stages.append(int(it.next()))
        if not ours & set(stages):
            continue
        site = str(job.name()).split(" at ")[-1].rsplit("/", 1)[-1]
        entry = sites.setdefault(f"{str(job.name()).split(' at ')[0]} at {site}", [0, 0.0])
        entry[0] += 1
        entry[1] += sum(run_time.get(i, 0.0) for i in stages)
    return sites


def _run(tree: Path, mode: str, work: Path, rows: int, out: Path | None = None, as_of: str = "") -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(tree / p) for p in ("lib", ".", "examples"))}
    cmd = [sys.executable, str(HERE / "bench_monitor.py"), "--child", mode, "--rows", str(rows), "--work",
           str(work.parent)]
    if out:
        cmd += ["--out", str(out), "--as-of", as_of]
    subprocess.run(cmd, check=True, env=env, cwd=tree)


def _key(r: dict) -> tuple:
    return (r["table"], str(r["window_start"]), r["kind"], r["subject"], r["metric"], r["slice"])


def _differences(a: list[dict], b: list[dict]) -> list[str]:
    left, right = {_key(r): r for r in a}, {_key(r): r for r in b}
    out = [f"only in A: {k}" for k in sorted(set(left) - set(right), key=str)[:5]]
    out += [f"only in B: {k}" for k in sorted(set(right) - set(left), key=str)[:5]]
    for k in sorted(set(left) & set(right), key=str):
        for field in ("value", "threshold", "breached", "rows", "status", "cause"):
            x, y = left[k][field], right[k][field]
            same = (x == y or (isinstance(x, float) and isinstance(y, float)
                               and math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)))
            if not same:
                out.append(f"{k} {field}: A {x!r} B {y!r}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=12_000)
    parser.add_argument("--work", default="/tmp/lakeboost-bench-monitor")
    parser.add_argument("--a", type=Path, help="tree A (main at the branch point)")
    parser.add_argument("--b", type=Path, default=HERE.parent, help="tree B (default: this one)")
    parser.add_argument("--order", default="ABBA")
    parser.add_argument("--reuse-warm-up", action="store_true",
                        help="keep an earlier warm-up run (A's records are then compared from it)")
    parser.add_argument("--child", choices=("build", "monitor"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--as-of", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = Path(args.work) / f"rows{args.rows}"
    if args.child == "build":
        return child_build(work, args.rows)
    if args.child == "monitor":
        return child_monitor(work, args.rows, args.out, args.as_of)
    from lakeboost.logs import configure_logging

    configure_logging("WARNING")
    trees = {"A": args.a.resolve(), "B": args.b.resolve()}
    if not (work / "built.json").exists():
        work.mkdir(parents=True, exist_ok=True)
        _run(trees["A"], "build", work, args.rows)
    built = json.loads((work / "built.json").read_text())
    print(f"lakehouse {work} ({args.rows} rows); the pipeline's own monitor step: "
          f"{built['monitor']['seconds']:.1f} s, {built['monitor']['cost']['jobs']} jobs")
    # One time for every run: labels known as of the same moment.
    as_of = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="minutes")
    warm_up = work / "warm-up.json"
    if args.reuse_warm_up and warm_up.exists():
        as_of = json.loads(warm_up.read_text())["as_of"]
    else:
        _run(trees["A"], "monitor", work, args.rows, warm_up, as_of)  # writes the records once
    results: list[tuple[str, dict]] = []
    for i, letter in enumerate(args.order):
        out = work / f"run{i}-{letter}.json"
        _run(trees[letter], "monitor", work, args.rows, out, as_of)
        results.append((letter, json.loads(out.read_text())))
    print(f"A={trees['A']}  B={trees['B']}  as_of={as_of}")
    print(f"{'run':<5} {'wall_s':>8} {'cpu_s':>8} {'jobs':>6} {'stages':>7} {'tasks':>7} {'records':>8}")
    for i, (letter, r) in enumerate(results):
        print(f"{i}:{letter:<3} {r['wall']:8.1f} {r['cpu']:8.1f} {r['jobs']:6d} {r['stages']:7d} {r['tasks']:7d} "
              f"{len(r['records']):8d}")
    for letter in "AB":
        mine = [r for x, r in results if x == letter]
        if mine:
            print(f"mean {letter}: wall {sum(r['wall'] for r in mine) / len(mine):.1f} s, "
                  f"cpu {sum(r['cpu'] for r in mine) / len(mine):.1f} s, jobs {mine[0]['jobs']}")
    for letter in "AB":
        first = next((r for x, r in results if x == letter), None)
        if first:
            print(f"jobs by call site, first {letter} run (jobs, executor CPU s):")
            for site, (n, secs) in sorted(first["sites"].items(), key=lambda kv: -kv[1][1]):
                print(f"    {n:4d} {secs:7.1f}  {site}")
    first_a = json.loads(warm_up.read_text())  # A's
    for i, (letter, r) in enumerate(results):
        diffs = _differences(first_a["records"], r["records"])
        print(f"records of run {i}:{letter} vs A's warm-up run: {'identical' if not diffs else f'{len(diffs)} differ'}")
        for line in diffs[:20]:
            print("   ", line)


if __name__ == "__main__":
    main()
