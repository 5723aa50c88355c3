"""Notebook helpers: widgets, session and config, display; on Databricks and anywhere else.

Notebooks call the same `lib` functions jobs call; this module only gives them parameters
(Databricks widgets, else `LAKEBOOST_<NAME>` environment variables) and a session.
"""

from __future__ import annotations

import builtins
import logging
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from pyspark.sql import DataFrame, SparkSession

from lakeboost.config import LakeboostConfig, load_config
from lakeboost.logs import configure_logging
from lakeboost.spark import build_spark
from lakeboost.steps import StepOptions, field_kind, get_step

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
# A comma starts a new override only when `key.path=` follows it: values may hold commas.
_OVERRIDE_START = re.compile(r",\s*(?=[A-Za-z0-9_.\-]+=)")
_logging_configured = False


def _shell() -> Any | None:
    """The running IPython shell (Jupyter, Databricks), or None."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _notebook_global(name: str) -> Any | None:
    """A name Databricks puts in the notebook's namespace (`dbutils`, `display`), or None."""
    shell = _shell()
    if shell is not None and name in shell.user_ns:
        return shell.user_ns[name]
    return getattr(builtins, name, None)


def _dbutils() -> Any | None:
    found = _notebook_global("dbutils")
    if found is None and "DATABRICKS_RUNTIME_VERSION" in os.environ:
        from pyspark.dbutils import DBUtils  # only on Databricks runtimes

        found = DBUtils(SparkSession.builder.getOrCreate())
    return found


def widget(name: str, default: str, label: str | None = None) -> str:
    """A text parameter: a Databricks widget, else env `LAKEBOOST_<NAME>`, else `default`."""
    dbutils = _dbutils()
    if dbutils is None:
        return os.environ.get(f"LAKEBOOST_{name.upper()}", default)
    dbutils.widgets.text(name, default, label or name)
    return str(dbutils.widgets.get(name))


def step_widgets(step: str) -> StepOptions:
    """The step's options from one widget each (named as the option, labelled with its help), typed and
    checked by the step's options model as `lakeboost run <step>` checks its command line.

    A repeatable option is a comma-separated list; a flag is `true` or `false`; empty is the default.
    Raises ConfigError naming the option when a value does not fit.
    """
    spec = get_step(step)
    values: dict[str, Any] = {}
    for name, field in spec.options.model_fields.items():
        kind, multiple = field_kind(field)
        default = field.default
        shown = "" if default in (None, ()) else str(default).lower() if kind is bool else str(default)
        text = widget(name, shown, field.description).strip()
        if text:
            values[name] = [v.strip() for v in text.split(",") if v.strip()] if multiple else text
    return spec.parse_options(values)


def parse_overrides(text: str) -> list[str]:
    """`"a.b=1, c={x: 1, y: 2}"` -> `["a.b=1", "c={x: 1, y: 2}"]`: the `--set` list of a widget."""
    return [part.strip() for part in _OVERRIDE_START.split(text.strip()) if part.strip()]


def notebook_context(env: str = "local", overrides: str | Sequence[str] = ()) -> tuple[SparkSession, LakeboostConfig]:
    """Load the config and get the session, as a job does.

    Args:
        env: the config overlay under the conf dir (`LAKEBOOST_CONF_DIR`, default the repo's `conf/`);
            the config's relative paths resolve against that directory, not the kernel's working one.
        overrides: `key=value` strings, or one comma-separated string of them (a widget's value).
    Returns:
        The active SparkSession (Databricks', or one built from `config.spark`) and the config.
    Raises:
        ConfigError: the config is invalid (before any session starts).
    """
    global _logging_configured
    if isinstance(overrides, str):
        overrides = parse_overrides(overrides)
    config = load_config(env, overrides)
    if not _logging_configured:
        configure_logging(config.logging.level)
        _logging_configured = True
    spark = build_spark(config.spark, app_name="lakeboost-notebook")
    log.info("notebook context: env %s, lakehouse %s, overridden keys %s", env, config.storage.root,
             [o.partition("=")[0] for o in overrides])  # keys only: a value may be a credential
    return spark, config


def display_df(df: DataFrame, n: int = 20) -> None:
    """Databricks' `display(df)` when there is one, else print the first `n` rows.

    The only `print`s in lib are here and in `display_image`: they are the notebook's output.
    """
    display = _notebook_global("display") if _dbutils() is not None else None
    if display is not None:
        display(df.limit(n))
    else:
        print(cast("pd.DataFrame", df.limit(n).toPandas()).to_string())


def display_image(path: str) -> None:
    """Show a PNG inline in IPython/Databricks, else print where it is."""
    if _shell() is not None:
        from IPython.display import Image, display

        display(Image(filename=path))
    else:
        print(f"plot: {path}")
