"""What spark-submit.sh packs for the executors: the installed runtime dependencies (no dev tools),
and the CUDA libraries only for a job that trains on a GPU."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

from lakeboost.config import load_config
from lakeboost.pack import CUDA_LIBRARIES, pack_excludes, runtime_pins

from tests.conftest import REPO


def test_cpu_jobs_pack_without_the_cuda_libraries_and_gpu_jobs_with_them() -> None:
    def excludes(*job_args: str) -> list[str]:
        done = subprocess.run([sys.executable, "-m", "lakeboost.pack", "pack-excludes", *job_args,
                               "--conf-dir", str(REPO / "conf")], capture_output=True, text=True, check=True)
        return done.stdout.split()

    assert excludes("--only", "train") == [CUDA_LIBRARIES]
    assert excludes("--set", "training.model.device=cuda") == []
    assert excludes("--set", "training.model.no_such_field=1") == []  # unreadable config: keep everything
    assert pack_excludes(load_config("local", conf_dir=REPO / "conf")) == [CUDA_LIBRARIES]


def test_runtime_pins_are_the_installed_runtime_dependencies_without_dev_tools() -> None:
    pins = dict(pin.split("==") for pin in runtime_pins())

    assert pins["pyspark"] == metadata.version("pyspark") and pins["xgboost"] == metadata.version("xgboost")
    assert {"pandas", "pyarrow", "numpy", "mlflow", "delta-spark"} <= set(pins)
    assert not {"lakeboost", "pytest", "ruff", "mypy", "venv-pack"} & set(pins)
