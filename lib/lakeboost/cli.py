"""The `lakeboost` command, generated from the step registry.

    lakeboost run pipeline --env cluster [--from STEP] [--to STEP] [--only STEP]
    lakeboost run <step> [its options]          e.g. lakeboost run train --replay RUN_ID
    lakeboost steps                             each step, what it requires, its options
    lakeboost config show|validate|schema
    lakeboost init DIR                          the default config and demo application, to edit

A step's options are its options model (`lakeboost.steps.StepOptions`): one command-line
option per field, the field's description as its help; the values are validated by the model,
so a wrong one fails with the step's and the option's name before Spark starts, as does a
required config key that is not set. Exit codes are the errors' (`LakeboostError.exit_code`:
2 for the config, 13 for a concurrent write, ...). `jobs/<step>.py` call `main(["run", <step>, ...])`.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic.fields import FieldInfo

from lakeboost.errors import ConfigError, LakeboostError
from lakeboost.logs import StepSummary
from lakeboost.runtime import CONF_DIR_HELP, ENV_HELP, SET_HELP, Common, base_parser
from lakeboost.steps import field_kind

# (flag, destination, click keywords) of the options every command that loads the config takes.
_COMMON: list[tuple[str, str, dict[str, Any]]] = [
    ("--env", "env", {"default": "local", "show_default": True, "help": ENV_HELP}),
    ("--conf-dir", "conf_dir", {"default": None, "metavar": "DIR", "help": CONF_DIR_HELP}),
    ("--set", "overrides", {"multiple": True, "metavar": "KEY=VALUE", "help": SET_HELP}),
]
# Where a scheduler finds what a run did (the Airflow DAG's operator returns it to XCom): the summary
# the run logs, as one JSON object, written once the run succeeded.
_SUMMARY_JSON: dict[str, Any] = {
    "default": None, "metavar": "PATH",
    "help": "after a successful run, write its summary (rows, table versions, details) as JSON to PATH "
            "(default: the storage root's _runs/<step>-<UTC time>.json)"}
_LOG_JSON: dict[str, Any] = {
    "is_flag": True, "default": False,
    "help": "also log each step's summary as one JSON line (lakeboost.summary: {...})"}
_METAVARS: dict[Any, str] = {dt.date: "DATE", dt.datetime: "TIME", float: "NUMBER", int: "INTEGER", str: "TEXT"}


def common_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for flag, dest, kwargs in reversed(_COMMON):
        fn = click.option(flag, dest, **kwargs)(fn)
    return fn


def _common(env: str, conf_dir: str | None, overrides: Sequence[str]) -> Common:
    return Common(env, conf_dir, tuple(overrides))


def option_for(name: str, field: FieldInfo) -> click.Option:
    """The command-line option of one options field: `--full-rebuild` for `full_rebuild`, help from its description."""
    flag = "--" + name.replace("_", "-")
    kind, multiple = field_kind(field)
    text = field.description or ""
    if kind is bool:
        return click.Option([flag, name], is_flag=True, default=False, help=text)
    if field.default not in (None, (), ""):
        text += f"  [default: {field.default}]"
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    metavar = str(extra.get("metavar") or _METAVARS.get(kind, getattr(kind, "__name__", "VALUE").upper()))
    # Strings on the command line; the options model types and checks them (one place, one message).
    return click.Option([flag, name], multiple=multiple, default=() if multiple else None, metavar=metavar,
                        help=text)


def _step_help(spec: Any) -> str:
    requires = "; ".join(f"{key} ({why})" if why else key for key, why in spec.requires.items())
    return spec.help + (f"\n\nRequires config: {requires}." if requires else "")


def _step_command(spec: Any) -> click.Command:
    def callback(env: str, conf_dir: str | None, overrides: Sequence[str], summary_json: str | None,
                 log_json: bool, **values: Any) -> int:
        given = {k: v for k, v in values.items() if v not in (None, (), False)}
        return run_step_command(spec.name, _common(env, conf_dir, overrides), given, summary_json, log_json=log_json)

    params: list[click.Parameter] = [option_for(name, field) for name, field in spec.options.model_fields.items()]
    params += [click.Option([flag, dest], **kwargs) for flag, dest, kwargs in _COMMON]
    params.append(click.Option(["--summary-json", "summary_json"], **_SUMMARY_JSON))
    params.append(click.Option(["--log-json", "log_json"], **_LOG_JSON))
    return click.Command(spec.name, params=params, callback=callback, help=_step_help(spec),
                         short_help=spec.help.split(". ")[0].split("\n")[0].rstrip("."))


def run_step_command(name: str, common: Common, values: dict[str, Any], summary_json: str | None = None, *,
                     log_json: bool = False) -> int:
    """Load the config, type the options, check the step's requirements, then start Spark and run it."""
    from lakeboost.pipeline import run_step
    from lakeboost.runtime import execute
    from lakeboost.steps import StepOptions, check_steps, get_step

    chosen: list[StepOptions] = []

    def check(config: Any) -> None:
        chosen.append(get_step(name).parse_options(values))
        check_steps(config, [name], {name: chosen[0]})

    def body(spark: Any, config: Any) -> StepSummary:
        return run_step(spark, config, name, chosen[0])

    return execute(name, common, body, check=check, summary_json=summary_json, log_json=log_json)


@click.command("pipeline", short_help="The configured steps in order (pipeline.steps), or a part of them")
@click.option("--from", "start", metavar="STEP", help="first step to run")
@click.option("--to", "stop", metavar="STEP", help="last step to run")
@click.option("--only", multiple=True, metavar="STEP", help="run only this step (repeatable)")
@click.option("--summary-json", "summary_json", **_SUMMARY_JSON)
@click.option("--log-json", "log_json", **_LOG_JSON)
@common_options
def pipeline_command(start: str | None, stop: str | None, only: Sequence[str], env: str, conf_dir: str | None,
                     overrides: Sequence[str], summary_json: str | None = None, log_json: bool = False) -> int:
    """Run the configured steps in order (pipeline.steps, default: the framework steps the config
    enables), or the part --from/--to/--only select; every step's required config is checked first."""
    from lakeboost.pipeline import run_pipeline, select_steps
    from lakeboost.runtime import execute
    from lakeboost.steps import check_steps

    chosen: list[str] = []

    def check(config: Any) -> None:
        chosen.extend(select_steps(config, only, start, stop))
        check_steps(config, chosen)

    return execute("pipeline", _common(env, conf_dir, overrides),
                   lambda spark, config: run_pipeline(spark, config, chosen), check=check,
                   summary_json=summary_json, log_json=log_json)


def _register_applications(args: Sequence[str]) -> None:
    """Load the config the arguments select, so an application's steps (application.modules) register."""
    known, _ = base_parser("", add_help=False).parse_known_args(list(args))
    Common(known.env, known.conf_dir, tuple(known.overrides)).load()


class StepGroup(click.Group):
    """`lakeboost run`: `pipeline` and one command per registered step, built from its declaration."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from lakeboost.steps import registered_steps

        return ["pipeline", *registered_steps()]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from lakeboost.steps import get_step

        if cmd_name == "pipeline":
            return pipeline_command
        try:
            return _step_command(get_step(cmd_name))
        except ConfigError:
            return None

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                            list[str]]:
        if args and not args[0].startswith("-") and args[0] not in self.list_commands(ctx):
            _register_applications(args[1:])  # not a framework step: perhaps the application's
        return super().resolve_command(ctx, args)


_EXAMPLES = """Examples:

\b
  lakeboost run pipeline --env cluster
  lakeboost run pipeline --from features --to promote
  lakeboost run train --replay RUN_ID
  lakeboost run score --model champion --date 2026-01-01
  lakeboost steps
  lakeboost config validate --env cluster --set training.model.n_estimators=200
  lakeboost init my-project && lakeboost run pipeline --conf-dir my-project/conf
"""


# A fixed width: the help reads the same in a terminal, a log and the README.
@click.group(context_settings={"help_option_names": ["-h", "--help"], "terminal_width": 100}, epilog=_EXAMPLES)
def cli() -> None:
    """lakeboost: a Delta lakehouse to tuned, registered XGBoost models on Spark.

    Every command that reads the config takes --env, --conf-dir and --set KEY=VALUE.
    """


@cli.group("run", cls=StepGroup, short_help="Run one step, or the pipeline")
def run_group() -> None:
    """Run one step, or the pipeline; `lakeboost run <step> --help` lists a step's options."""


@cli.command("steps", short_help="List the steps: what each requires, its options")
@common_options
def steps_command(env: str, conf_dir: str | None, overrides: Sequence[str]) -> None:
    """List every step: what it does, the config it requires (and whether it is set), its options."""
    from lakeboost.steps import configured_steps, get_step, is_configured, registered_steps

    try:
        config = _common(env, conf_dir, overrides).load()  # registers the application's steps
    except LakeboostError as exc:
        config = None
        click.echo(f"(config not loaded, the application's steps are not listed: {exc})\n", err=True)
    pipeline = configured_steps(config) if config is not None else []
    for name in registered_steps():
        spec = get_step(name)
        click.echo(f"{name}{'  [in the pipeline]' if name in pipeline else ''}\n  {spec.help.splitlines()[0]}")
        for key, why in spec.requires.items():
            state = "" if config is None else (" [set]" if is_configured(config, key) else " [NOT SET]")
            click.echo(f"  requires {key}{state}" + (f": {why}" if why else ""))
        for field_name, field in spec.options.model_fields.items():
            option = option_for(field_name, field)
            flag = option.opts[0] + ("" if option.is_flag else f" {option.metavar}")
            click.echo(f"  {flag:<28} {option.help}")
        click.echo("")


@cli.group("config", short_help="Show, validate or describe the configuration (show|validate|schema)")
def config_group() -> None:
    """Show, validate or describe the configuration."""


@config_group.command("show")
@common_options
def config_show(env: str, conf_dir: str | None, overrides: Sequence[str]) -> None:
    """Print the merged config (base, overlay, --set, ${ENV:...}) as YAML, secrets redacted."""
    import yaml

    config = _common(env, conf_dir, overrides).load()
    merged = config.model_dump(mode="json", by_alias=True, exclude={"sections"})
    merged.update({name: section.model_dump(mode="json", by_alias=True) for name, section in config.sections.items()})
    click.echo(yaml.safe_dump(merged, sort_keys=False, default_flow_style=False), nl=False)
    ts = config.gold.training_set
    feature_set = config.gold.features.get(ts.features.split(".", 1)[-1]) if ts is not None else None
    if ts is not None and feature_set is not None and config.dataset is not None:
        # As YAML comments, so the output stays the config it was.
        from lakeboost.features.training_set import declared_feature_columns

        columns = declared_feature_columns(ts, feature_set, config.dataset)
        custom = ", ".join(c.name for c in feature_set.custom)
        click.echo(f"# the training set's feature columns ({len(columns)}"
                   + (f", plus those the custom functions {custom} add" if custom else "") + "):")
        for column in columns:
            click.echo(f"#   {column}" + ("  (categorical)" if column in ts.categorical else ""))


@config_group.command("validate")
@common_options
def config_validate(env: str, conf_dir: str | None, overrides: Sequence[str]) -> None:
    """Load the config and check it, with what the configured steps require (exit 0, or 2 with the problems)."""
    from lakeboost.steps import check_steps

    common = _common(env, conf_dir, overrides)
    config = common.load()
    specs = check_steps(config)
    click.echo(f"config valid: env {common.env}, pipeline {[s.name for s in specs]}")


@config_group.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of the config (for editors: completion and checks of the YAML)."""
    from lakeboost.config.schema import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@cli.command("init", short_help="Write the default config and the demo application to DIR, to edit")
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
def init_command(directory: Path) -> None:
    """Write the default project to DIR: DIR/conf (base/, local/, cluster/, the JSON Schema) and the
    demo application its config loads (DIR/examples/card_fraud); then run it with --conf-dir DIR/conf.
    Relative paths in the config resolve against DIR/conf: the demo's tables go to DIR/data."""
    from lakeboost.config.project import init_project

    written = init_project(directory)
    click.echo("wrote " + ", ".join(str(path) for path in written))
    click.echo(f"run it: lakeboost run pipeline --conf-dir {directory / 'conf'}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit code (a LakeboostError's own, 2 for a usage error)."""
    try:
        result = cli.main(args=list(argv) if argv is not None else None, prog_name="lakeboost",
                          standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except LakeboostError as exc:
        click.echo(f"lakeboost: {exc}", err=True)
        return exc.exit_code
    return result if isinstance(result, int) else 0


def console() -> NoReturn:
    """The `lakeboost` console entry point: exit with main()'s code (a caller that ignores a
    function's return value, as a Databricks python_wheel_task does, still sees a failure)."""
    sys.exit(main())
