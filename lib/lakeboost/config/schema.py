"""The JSON Schema of the whole config, generated from the pydantic models.

Editors (the YAML language server, PyCharm) complete and check the YAML with it, and CI
validates the three applications' configs against it. It describes the *merged* config
(base files, an environment overlay and `--set` overrides together), the document
`load_config` validates; the keys by their YAML names (aliases, e.g. a source's `schema`).

`lakeboost config schema` prints it; `conf/lakeboost.schema.json` is the checked-in copy
(tests/config/test_schema.py fails when it is stale: regenerate with
`python -m lakeboost.config.schema > conf/lakeboost.schema.json`).
"""

from __future__ import annotations

import ast
import functools
import inspect
import io
import json
import sys
import textwrap
import tokenize
from copy import deepcopy
from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from lakeboost.config.durations import Duration
from lakeboost.config.model import LakeboostConfig

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) a merged lakeboost config validates against.

    Applications' own sections (registered with `lakeboost.plugins.register_section`, e.g. the
    demo's `demo:`) are top-level keys the framework does not know: any other top-level key is
    allowed as an object, and the application's model checks it when the config loads.
    """
    schema = deepcopy(LakeboostConfig.model_json_schema(by_alias=True, mode="validation",
                                                        schema_generator=_SpelledDefaults))
    properties = schema["properties"]
    # `sections` is where the loader puts the applications' parsed sections, never a YAML key;
    # `env` is the environment the loader was given (--env), set by it.
    properties.pop("sections", None)
    properties["env"]["description"] = "The environment the config was loaded for (set by the loader from --env)."
    schema["additionalProperties"] = {
        "type": "object",
        "description": "An application's own section (lakeboost.plugins.register_section), checked by its model.",
    }
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": "https://lakeboost.dev/schema/lakeboost.schema.json",
        "title": "lakeboost configuration",
        **{k: v for k, v in schema.items() if k != "title"},
    }


class _SpelledDefaults(GenerateJsonSchema):
    """Defaults as the YAML spells them, and each field's comment in the model as its description.

    pydantic encodes a tuple default by its Python type, which writes the durations of
    `windows: (1d, 7d, 30d)` in ISO 8601 (`P1D`). The models document their fields with
    comments (above the field, or after it on its line): those are what an editor shows on hover.
    """

    def encode_default(self, dft: Any) -> Any:
        return super().encode_default(_spelled(dft))

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        json_schema = super().model_schema(schema)
        comments = field_comments(schema["cls"])  # type: ignore[arg-type]  # a class is hashable
        fields = schema["cls"].model_fields
        for name, text in comments.items():
            field = fields.get(name)
            target = json_schema.get("properties", {}).get(field.alias or name) if field else None
            # A Field(description=...) is kept; a type's own text (a Duration's accepted forms) follows.
            if target is not None and field is not None and field.description is None:
                own = target.get("description")
                target["description"] = f"{text.rstrip('.')}. {own}" if own else text
        return json_schema


@functools.cache
def field_comments(cls: type) -> dict[str, str]:
    """Field name -> its comment in the class source: the comment lines right above it and the
    comment after it on its line, joined."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    inline = {tok.start[0]: tok.string.lstrip("# ").strip()
              for tok in tokenize.generate_tokens(io.StringIO(source).readline)
              if tok.type == tokenize.COMMENT and lines[tok.start[0] - 1].split("#")[0].strip()}
    comments: dict[str, str] = {}
    body = ast.parse(source).body[0]
    for node in getattr(body, "body", []):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above: list[str] = []
        line = node.lineno - 1
        while line > 0 and lines[line - 1].strip().startswith("#"):
            above.insert(0, lines[line - 1].strip().lstrip("# ").strip())
            line -= 1
        text = " ".join([*above, *([inline[node.lineno]] if node.lineno in inline else [])])
        if text:
            comments[node.target.id] = text
    return comments


def _spelled(value: Any) -> Any:
    if isinstance(value, Duration):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_spelled(v) for v in value]
    return value


def render(schema: dict[str, Any] | None = None) -> str:
    """The schema as the checked-in file holds it: sorted keys, two-space indent, final newline."""
    return json.dumps(schema if schema is not None else json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # python -m lakeboost.config.schema > conf/lakeboost.schema.json
    sys.stdout.write(render())
