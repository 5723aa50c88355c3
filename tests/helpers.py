"""Small builders shared by tests: configs rooted in tmp_path, and DataFrame comparison."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from lakeboost.config.model import LakeboostConfig
from pyspark.sql import SparkSession


def make_config(tmp_path: Path, sources: dict[str, Any] | None = None, **sections: Any) -> LakeboostConfig:
    """A validated config whose lakehouse and landing live under tmp_path."""
    raw: dict[str, Any] = {
        "storage": {"root": str(tmp_path / "lake"), "landing": str(tmp_path / "landing")},
        "sources": sources or {},
        **sections,
    }
    return LakeboostConfig.model_validate(raw)


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def load_script(path: Path) -> ModuleType:
    """A script that is not in a package (an application's prepare.py, say), imported by path."""
    spec = importlib.util.spec_from_file_location(f"script_{path.parent.name}_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHROMIUM = "chromium"
_IMAGES_PROBE = ("<script>window.addEventListener('load', () => document.body.setAttribute('data-images', "
                 "[...document.images].filter(i => i.complete && i.naturalWidth > 0).length + '/' + "
                 "document.images.length));</script>")


def _chromium(*args: str) -> str:
    import subprocess

    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--virtual-time-budget=10000", *args], capture_output=True, text=True, timeout=120,
                          check=True)
    return done.stdout


def screenshot(page: Path, png: Path, *, width: int = 1280, height: int = 2400) -> Path:
    """What a person sees: headless Chromium's rendering of `page` (an HTML file) as a PNG."""
    _chromium(f"--window-size={width},{height}", f"--screenshot={png}", page.resolve().as_uri())
    return png


def rendered_dom(page: Path) -> str:
    """The page's DOM as Chromium rendered it (what a person's browser holds)."""
    return _chromium("--dump-dom", page.resolve().as_uri())


def images_rendered(page: Path) -> tuple[int, int]:
    """(images that loaded and have a size, images on the page), as Chromium rendered it."""
    import re

    probe = page.with_suffix(".probe.html")
    probe.write_text(page.read_text().replace("</body>", _IMAGES_PROBE + "</body>"))
    dom = _chromium("--dump-dom", probe.resolve().as_uri())
    found = re.search(r'data-images="(\d+)/(\d+)"', dom)
    if not found:
        raise AssertionError(f"the page did not finish loading in Chromium: {dom[:300]}")
    return int(found.group(1)), int(found.group(2))


def spark_jobs(spark: SparkSession, action: Callable[[], Any]) -> tuple[Any, int]:
    """`action()`'s result and how many Spark jobs it ran (broadcasts' jobs inherit the job group).
    The job group is removed afterwards, not left as an empty one: jobs of later tests must be
    in no group (test_cost counts those)."""
    sc = spark.sparkContext
    group = f"counted-{uuid.uuid4().hex}"
    sc.setJobGroup(group, "count the jobs")
    try:
        result = action()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
        sc.setLocalProperty("spark.job.description", None)
    return result, len(sc.statusTracker().getJobIdsForGroup(group))


def job_conf_dir(conf: Path, root: Path, sections: dict[str, Any]) -> Path:
    """A config directory (base + an empty local overlay) for jobs run as subprocesses: the repo's
    Spark settings on one core with one partition and no generated code (the suite's, see
    tests/conftest.TEST_JOB_SPARK_CONF), the lakehouse and landing under `root`, and `sections`
    (sources, silver, gold...)."""
    import yaml

    (conf / "base").mkdir(parents=True)
    (conf / "local").mkdir()
    base = yaml.safe_load((Path(__file__).resolve().parents[1] / "conf/base/spark.yml").read_text())
    base["spark"]["master"] = "local[1]"
    base["spark"]["conf"].update({"spark.sql.shuffle.partitions": "1", "spark.ui.enabled": "false",
                                  "spark.databricks.delta.snapshotPartitions": "1",
                                  "spark.sql.codegen.wholeStage": "false",
                                  "spark.sql.codegen.factoryMode": "NO_CODEGEN"})
    base["storage"] = {"root": str(root / "lake"), "landing": str(root / "landing")}
    base.update(sections)
    (conf / "base" / "all.yml").write_text(yaml.safe_dump(base))
    return conf


def txn_versions(table_dir: Path, app_prefix: str) -> set[int]:
    """The txnVersions (batch ids) committed to the Delta table at `table_dir` under an app id that
    is `app_prefix` plus a query id (no further dots), read from its log on disk (a session's
    snapshot cache lags a writer in another process): where a killed job's batches reached."""
    import json

    found = set()
    for commit in (table_dir / "_delta_log").glob("*.json"):
        for line in commit.read_text().splitlines():
            txn = json.loads(line).get("txn") if line.strip() else None
            if txn and txn["appId"].startswith(app_prefix) and "." not in txn["appId"][len(app_prefix):]:
                found.add(int(txn["version"]))
    return found


def checkpoint_batches(checkpoint: Path) -> tuple[set[int], set[int]]:
    """(batches with an offset, batches committed) in a streaming query's checkpoint."""
    return tuple({int(p.name) for p in (checkpoint / d).glob("[0-9]*")} for d in ("offsets", "commits"))
