"""Where the config lives, what its relative paths mean, and the default project a wheel carries.

Relative paths in config (storage.root, storage.landing, spark.jars_dir, a SQLite JDBC URL,
training.model.worker_files_dir, application.python_path) resolve against the **config
directory** (the one `--conf-dir` names, not its base/ or overlay subdirectory), never the
process's working directory: a notebook kernel started in notebooks/, a job started by a
scheduler in its own directory and a shell in the repository all read the same lakehouse. One
rule for every path, as application.python_path already had, so a config directory can be moved
or copied with what it points at. The repository's conf/ therefore says `../data/lakehouse`.

Which config directory, when none is named: `$LAKEBOOST_CONF_DIR`, else the checkout's conf/
when lakeboost runs from a checkout's lib/, else the default project packed into the wheel
(`lakeboost/default_project/`: conf/ and the demo application examples/card_fraud, laid out as
in the repository so the same files work in both). That one lies read-only inside
site-packages: its relative data paths resolve as if the project were at `$LAKEBOOST_DATA_HOME`
(default ~/.lakeboost), so the demo's tables land in ~/.lakeboost/data/. `lakeboost init DIR`
writes it out to edit.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from lakeboost.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parents[1]
# conf/ and examples/card_fraud, packed into the wheel by setup.py (absent in a checkout).
PACKAGED_PROJECT = PACKAGE_DIR / "default_project"
# The repository, when lakeboost is imported from its lib/ (a checkout, or an editable install).
_CHECKOUT = PACKAGE_DIR.parents[1]
CONF_DIR_ENV = "LAKEBOOST_CONF_DIR"
DATA_HOME_ENV = "LAKEBOOST_DATA_HOME"
DEFAULT_DATA_HOME = "~/.lakeboost"
# What `lakeboost init` copies: the config and the application its config names (python_path).
_PROJECT_PARTS = ("conf", "examples/card_fraud")


def checkout_conf_dir() -> Path | None:
    """The checkout's conf/ when lakeboost runs from a checkout's lib/, else None."""
    conf = _CHECKOUT / "conf"
    return conf if PACKAGE_DIR.parent.name == "lib" and (conf / "base").is_dir() else None


def default_conf_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$LAKEBOOST_CONF_DIR`, else the checkout's conf/, else the wheel's packaged default."""
    environ = os.environ if environ is None else environ
    if environ.get(CONF_DIR_ENV):
        return Path(environ[CONF_DIR_ENV])
    return checkout_conf_dir() or PACKAGED_PROJECT / "conf"


def is_packaged(conf_dir: Path) -> bool:
    return conf_dir.resolve().is_relative_to(PACKAGED_PROJECT)


def path_base(conf_dir: Path, environ: Mapping[str, str] | None = None) -> Path:
    """The directory relative data paths of the config in `conf_dir` resolve against.

    The config directory itself; for the packaged default (read-only, inside site-packages) the
    same place under `$LAKEBOOST_DATA_HOME` (default ~/.lakeboost), e.g. ~/.lakeboost/conf.
    """
    conf_dir = conf_dir.resolve()
    if not is_packaged(conf_dir):
        return conf_dir
    environ = os.environ if environ is None else environ
    home = Path(environ.get(DATA_HOME_ENV) or DEFAULT_DATA_HOME).expanduser()
    return (home / conf_dir.relative_to(PACKAGED_PROJECT)).resolve()


def resolve_local_path(value: str, base: Path) -> str:
    """`value` as an absolute local path (relative ones against `base`); URIs are returned as they are."""
    if not value or "://" in value or value.startswith("dbfs:"):
        return value
    path = Path(value).expanduser()
    return str((path if path.is_absolute() else base / path).resolve())


def default_project_source() -> Path:
    """Where `lakeboost init` copies from: the wheel's packaged project, else the checkout."""
    if (PACKAGED_PROJECT / "conf" / "base").is_dir():
        return PACKAGED_PROJECT
    if checkout_conf_dir() is not None:
        return _CHECKOUT
    raise ConfigError(f"no default project to copy: neither {PACKAGED_PROJECT}/conf (an installed wheel) nor "
                      f"{_CHECKOUT}/conf (a checkout) exists; reinstall lakeboost")


def init_project(target: Path) -> list[Path]:
    """Copy the default config and the demo application into `target` (conf/, examples/card_fraud/).

    Returns the directories written. Raises ConfigError when `target`/conf already exists: an
    edited config is never overwritten.
    """
    source = default_project_source()
    conf = target / "conf"
    if conf.exists():
        raise ConfigError(f"{conf} already exists; `lakeboost init` never overwrites a config: "
                          "remove it or choose another directory")
    written = []
    for part in _PROJECT_PARTS:
        shutil.copytree(source / part, target / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        written.append(target / part)
    return written
