"""Load configuration: base YAML, an environment overlay, `--set` overrides, `${ENV:NAME}`.

Every leaf key remembers the file (or `--set`) that gave it its value, so a validation error
names the file to edit, not just the key. Relative paths resolve against the config directory,
never the working directory (`lakeboost.config.project` says why and which directory).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lakeboost.config.model import LakeboostConfig, StorageConfig
from lakeboost.config.project import default_conf_dir, path_base, resolve_local_path
from lakeboost.config.validate import cross_section_problems
from lakeboost.errors import ConfigError
from lakeboost.plugins import feature_problem, load_application, registered_sections

_ENV_REF = re.compile(r"\$\{ENV:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Keys whose values are paths on the local file system when relative (a URI is left as it is).
_LOCAL_PATH_KEYS = (("storage", "root"), ("storage", "landing"), ("spark", "jars_dir"),
                    ("training", "model", "worker_files_dir"))


def load_config(
    env: str = "local",
    overrides: Iterable[str] = (),
    conf_dir: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> LakeboostConfig:
    """Build the typed config from `conf_dir/base/*.yml`, `conf_dir/<env>/*.yml` and overrides.

    Raises:
        ConfigError: a file does not parse, an override is malformed, an env var is unset,
            or a value fails validation (message names file, key, expected and found).
    """
    conf_path = _conf_path(conf_dir)
    origin: dict[tuple[str, ...], str] = {}
    resolved = _merged(conf_path, env, overrides, os.environ if environ is None else environ, origin)
    _load_application(resolved, conf_path, origin)
    sections = {}
    for name, model in registered_sections().items():
        if name in resolved:
            try:
                sections[name] = model.model_validate(resolved.pop(name))
            except ValidationError as exc:
                raise ConfigError(_describe(exc, origin, prefix=(name,))) from None
    try:
        config = LakeboostConfig.model_validate({**resolved, "sections": sections})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin)) from None
    _check_across_sections(config, origin)
    return config


def merged_document(
    env: str = "local",
    overrides: Iterable[str] = (),
    conf_dir: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The merged config document `load_config` validates: layers, overrides and `${ENV:..}`
    resolved, before any model sees it (what `lakeboost.config.schema` describes).

    Raises:
        ConfigError: as `load_config`, for the reading and merging.
    """
    return _merged(_conf_path(conf_dir), env, overrides, os.environ if environ is None else environ, {})


def _conf_path(conf_dir: str | Path | None) -> Path:
    # A --conf-dir given relative is a command-line path: relative to where the command runs.
    return (Path(conf_dir) if conf_dir else default_conf_dir()).expanduser().resolve()


def _merged(
    conf_path: Path, env: str, overrides: Iterable[str], environ: Mapping[str, str],
    origin: dict[tuple[str, ...], str],
) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    base_dir = conf_path / "base"
    if not base_dir.is_dir():
        raise ConfigError(f"config directory {base_dir} not found; pass --conf-dir or set LAKEBOOST_CONF_DIR")
    # `local+kafka`: the overlays local, then kafka, each over the ones before it.
    env_dirs = [conf_path / name for name in env.split("+")]
    for env_dir in env_dirs:
        if not env_dir.is_dir():
            known = sorted(p.name for p in conf_path.iterdir() if p.is_dir() and p.name != "base")
            raise ConfigError(f"unknown environment {env_dir.name!r}: no {env_dir}; known environments: {known}")
    for layer in (base_dir, *env_dirs):
        for file in sorted(layer.glob("*.yml")) + sorted(layer.glob("*.yaml")):
            _deep_merge(merged, _read_yaml(file), origin, str(file), ())
    for override in overrides:
        key, value = _parse_override(override)
        _deep_merge(merged, _nest(key, value), origin, f"--set {override}", ())
    merged["env"] = env
    resolved = _resolve_env_refs(merged, environ, origin, ())
    _absolutise_local_paths(resolved, path_base(conf_path, environ))
    return resolved


def _load_application(resolved: dict[str, Any], conf_path: Path, origin: dict[tuple[str, ...], str]) -> None:
    application = resolved.get("application") or {}
    if not isinstance(application, dict):
        return  # the model's validation names the wrong type
    where = _nearest_origin(("application",), origin)
    load_application(application.get("python_path") or (), application.get("modules") or (),
                     conf_dir=conf_path, where=where)


def _check_across_sections(config: LakeboostConfig, origin: dict[tuple[str, ...], str]) -> None:
    # pipeline.steps is the runner's to check (lakeboost.steps.check_steps), with each step's requirements.
    problems = cross_section_problems(config, feature_problem=feature_problem)
    if problems:
        lines = [f"{_nearest_origin(path, origin)}: {'.'.join(path)}: {message}" for path, message in problems]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))


def _read_yaml(file: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level, found {type(data).__name__}")
    return data


def _deep_merge(
    into: dict[str, Any], new: Mapping[str, Any], origin: dict[tuple[str, ...], str],
    source: str, prefix: tuple[str, ...],
) -> None:
    for key, value in new.items():
        path = (*prefix, str(key))
        if _other_kind_of_source(path, into.get(key), value):
            into.pop(key)  # a file source turned Kafka shares no keys with it: replaced, not merged
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value, origin, source, path)
        else:
            into[key] = _copy(value)
            origin[path] = source
            for sub in _leaf_paths(value, path):
                origin[sub] = source


def _other_kind_of_source(path: tuple[str, ...], old: Any, new: Any) -> bool:
    return (len(path) == 2 and path[0] == "sources" and isinstance(old, dict) and isinstance(new, Mapping)
            and "format" in new and "format" in old and new["format"] != old["format"])


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _leaf_paths(value: Any, path: tuple[str, ...]) -> Iterable[tuple[str, ...]]:
    if isinstance(value, Mapping):
        for key, sub in value.items():
            yield (*path, str(key))
            yield from _leaf_paths(sub, (*path, str(key)))


def _parse_override(override: str) -> tuple[str, Any]:
    key, sep, raw = override.partition("=")
    if not sep or not key.strip() or not re.fullmatch(r"[A-Za-z0-9_.\-]+", key.strip()):
        raise ConfigError(f"--set {override!r}: expected key.path=value, e.g. --set training.model.n_estimators=200")
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def _nest(dotted: str, value: Any) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    cursor = nested
    parts = dotted.split(".")
    for part in parts[:-1]:
        cursor = cursor.setdefault(part, {})
    cursor[parts[-1]] = value
    return nested


def _resolve_env_refs(
    value: Any, environ: Mapping[str, str], origin: dict[tuple[str, ...], str], path: tuple[str, ...]
) -> Any:
    if isinstance(value, dict):
        return {k: _resolve_env_refs(v, environ, origin, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env_refs(v, environ, origin, path) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        where = origin.get(path, "config")
        raise ConfigError(
            f"{where}: {'.'.join(path)} refers to environment variable {name}, which is not set; "
            f"export {name}=... (secrets belong in the environment, never in YAML)"
        )

    return _ENV_REF.sub(substitute, value)


def _absolutise_local_paths(config: dict[str, Any], base: Path) -> None:
    # Against the config directory, now: executors in local mode, child processes and a notebook
    # kernel started in notebooks/ must all see the same paths, whatever their working directory.
    storage = config.setdefault("storage", {})
    if isinstance(storage, dict):
        for key in ("root", "landing"):  # the model's defaults are relative paths too
            storage.setdefault(key, StorageConfig.model_fields[key].default)
    for path in _LOCAL_PATH_KEYS:
        *parents, key = path
        section: Any = config
        for name in parents:
            section = section.get(name) if isinstance(section, dict) else None
        if isinstance(section, dict) and isinstance(section.get(key), str):
            section[key] = resolve_local_path(section[key], base)
    landing = storage.get("landing") if isinstance(storage, dict) else None
    for source in (config.get("sources") or {}).values():
        if not isinstance(source, dict):
            continue  # the model's validation names the wrong type
        url = source.get("url")
        if isinstance(url, str) and url.startswith("jdbc:sqlite:") and not url.startswith("jdbc:sqlite:/"):
            source["url"] = "jdbc:sqlite:" + resolve_local_path(url[len("jdbc:sqlite:"):], base)
        relative = source.get("path")
        if isinstance(relative, str) and isinstance(landing, str) and "://" not in relative \
                and not relative.startswith(("/", "dbfs:")):
            source["path"] = f"{landing.rstrip('/')}/{relative}"


def _describe(exc: ValidationError, origin: dict[tuple[str, ...], str], prefix: tuple[str, ...] = ()) -> str:
    lines = []
    for error in exc.errors():
        loc = (*prefix, *(str(part) for part in error["loc"]))
        # Discriminated unions add the tag ("csv") to the location; drop it for the key path.
        key_path = tuple(part for part in loc
                         if part not in ("csv", "json", "parquet", "jdbc", "kafka", "presence", "value"))
        where = _nearest_origin(key_path, origin)
        found = error.get("input")
        found_text = "" if isinstance(found, dict) else f", found {found!r}"
        if error["type"] == "missing":
            found_text = ", but it is missing"
        elif error["type"] == "union_tag_invalid":
            key_path, found_text = (*key_path, "format"), ""
        elif any(secret in part for part in key_path for secret in ("password", "secret", "token")):
            found_text = ""  # never echo a credential back into logs
        lines.append(f"{where}: {'.'.join(key_path) or '(top level)'}: {error['msg']}{found_text}")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _nearest_origin(path: tuple[str, ...], origin: dict[tuple[str, ...], str]) -> str:
    for end in range(len(path), 0, -1):
        if path[:end] in origin:
            return origin[path[:end]]
    return "config"
