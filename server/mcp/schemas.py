"""What the tool definitions cost: JSON schemas trimmed to what a model needs to call a tool.

pydantic's schemas carry a ``title`` on every property (the field name again, title-cased) and
wrap every optional argument in ``anyOf: [T, {type: null}]``. A model reads ``tools/list`` on
every turn, so those bytes are paid again and again for nothing: the name is already the key and
"optional" is already said by the argument not being ``required``. Output schemas keep their
types but stop requiring nullable fields, because results leave nulls out (see ``budget``).
"""

from __future__ import annotations

import re
from typing import Any

#: Schema keywords whose value maps names to schemas (recurse into each value, keep every key).
_NAMED = ("properties", "$defs", "definitions", "patternProperties")
#: Schema keywords whose value is one schema or a list of schemas.
_NESTED = ("items", "additionalProperties", "anyOf", "oneOf", "allOf", "not", "prefixItems")


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null"


def _walk(schema: Any, visit) -> Any:  # type: ignore[no-untyped-def]
    """Apply ``visit`` to ``schema`` and every subschema, bottom-up; returns a new schema."""
    if isinstance(schema, list):
        return [_walk(s, visit) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _NAMED and isinstance(value, dict):
            out[key] = {name: _walk(sub, visit) for name, sub in value.items()}
        elif key in _NESTED:
            out[key] = _walk(value, visit)
        else:
            out[key] = value
    return visit(out)


#: "(default 20)" in a description says again what the schema's ``default`` says.
_DEFAULT_NOTE = re.compile(r"\s*\(default [^()]*\)")


def _slim(schema: dict[str, Any]) -> dict[str, Any]:
    schema.pop("title", None)
    if "default" in schema and isinstance(schema.get("description"), str):
        schema["description"] = _DEFAULT_NOTE.sub("", schema["description"])
    variants = schema.get("anyOf")
    if isinstance(variants, list) and len(variants) == 2 and any(_is_null(v) for v in variants):
        inner = next(v for v in variants if not _is_null(v))
        del schema["anyOf"]
        if schema.get("default", ...) is None:
            del schema["default"]   # "absent" already means the default
        schema = {**inner, **schema}
    return schema


def slim_input_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The input schema without titles, null wrappers and ``default: null`` (arguments are still
    validated in full by the tool's pydantic model on the server)."""
    return _walk(schema, _slim)


def _nullable(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    if _is_null(schema) or schema.get("type") == ["null"]:
        return True
    types = schema.get("type")
    if isinstance(types, list) and "null" in types:
        return True
    return any(_nullable(v) for v in schema.get("anyOf", []) + schema.get("oneOf", []))


def _relax(schema: dict[str, Any]) -> dict[str, Any]:
    schema.pop("title", None)
    props = schema.get("properties")
    if isinstance(props, dict) and "required" in schema:
        schema["required"] = [name for name in schema["required"] if not _nullable(props.get(name))]
        if not schema["required"]:
            del schema["required"]
    return schema


def relax_output_schema(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """The output schema without titles, with nullable fields optional: results omit nulls."""
    if schema is None:
        return None
    relaxed = _walk(schema, _relax)
    relaxed.setdefault("properties", {})
    return relaxed
