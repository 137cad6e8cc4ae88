"""Map one span's attribute dict onto canonical ``Span`` fields.

Every instrumentation family (OTel GenAI, its deprecated names, OpenInference, MLflow, Langfuse
over OTel) says the same thing under different keys. The keys live in the tables below, in
precedence order, so supporting a new convention is one row, not one more ``if``. The
precedence rules come from ``TRACE_FORMATS.md``: the first non-empty source wins.

Also here: OTLP ``AnyValue`` decoding, because the OTLP reader must turn ``[{key, value}]``
lists into the same plain dict every other reader already has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from math import isfinite
from typing import Any, Mapping, NamedTuple

from server.ingestion.json_text import loads
from tools.models import SPAN_TYPES

__all__ = [
    "Attr", "Flat", "Sub", "SpanFields", "FIELD_KEYS", "GENAI_OPERATIONS", "LANGFUSE_TYPES",
    "as_int", "as_text", "decode_any_value", "decode_key_values", "map_attributes",
    "maybe_json", "span_type_of", "trace_field",
]


# --- key specs: where a value can live ----------------------------------------------------------

@dataclass(frozen=True)
class Attr:
    """A plain attribute key."""

    key: str

    def get(self, attrs: Mapping[str, Any]) -> Any:
        return attrs.get(self.key)


@dataclass(frozen=True)
class Sub:
    """A field inside an attribute whose value is a dict (or a JSON string holding one)."""

    key: str
    field: str

    def get(self, attrs: Mapping[str, Any]) -> Any:
        holder = maybe_json(attrs.get(self.key))
        return holder.get(self.field) if isinstance(holder, dict) else None


@dataclass(frozen=True)
class Flat:
    """An index-flattened list (``llm.input_messages.0.message.role``), rebuilt into lists/dicts."""

    prefix: str

    def get(self, attrs: Mapping[str, Any]) -> Any:
        return unflatten(attrs, self.prefix)


Key = Attr | Sub | Flat

#: Canonical field -> where to look, first non-empty wins. Tokens: GenAI current, GenAI
#: deprecated, OpenInference, MLflow. Inputs/outputs: GenAI messages, deprecated prompt/completion,
#: tool call arguments/result, OpenInference value, MLflow span I/O, plain keys, flattened messages.
FIELD_KEYS: dict[str, tuple[Key, ...]] = {
    "model": (Attr("gen_ai.response.model"), Attr("gen_ai.request.model"), Attr("llm.model_name"),
              Attr("mlflow.llm.model")),
    "input_tokens": (Attr("gen_ai.usage.input_tokens"), Attr("gen_ai.usage.prompt_tokens"),
                     Attr("llm.token_count.prompt"), Sub("mlflow.chat.tokenUsage", "input_tokens")),
    "output_tokens": (Attr("gen_ai.usage.output_tokens"), Attr("gen_ai.usage.completion_tokens"),
                      Attr("llm.token_count.completion"), Sub("mlflow.chat.tokenUsage", "output_tokens")),
    "inputs": (Attr("gen_ai.input.messages"), Attr("gen_ai.prompt"), Attr("gen_ai.tool.call.arguments"),
               Attr("input.value"), Attr("mlflow.spanInputs"), Attr("input"),
               Flat("gen_ai.prompt"), Flat("llm.input_messages")),
    "outputs": (Attr("gen_ai.output.messages"), Attr("gen_ai.completion"), Attr("gen_ai.tool.call.result"),
                Attr("output.value"), Attr("mlflow.spanOutputs"), Attr("output"),
                Flat("gen_ai.completion"), Flat("llm.output_messages")),
    "tool_name": (Attr("gen_ai.tool.name"), Attr("tool.name")),
    "session_id": (Attr("gen_ai.conversation.id"), Attr("session.id"), Attr("mlflow.trace.session"),
                   Attr("langfuse.session.id")),
    "user_id": (Attr("user.id"), Attr("enduser.id"), Attr("mlflow.trace.user"), Attr("langfuse.user.id")),
    "prompt_version": (Attr("llm.prompt_template.version"), Attr("langfuse.observation.prompt.version"),
                       Attr("prompt_version")),
    "error_type": (Attr("error.type"),),
}

#: Span type sources in precedence order: (key, value map). Values not in the map are taken as
#: is when they name a canonical type; anything else ("SPAN", "chain" from LangSmith) falls through.
GENAI_OPERATIONS: dict[str, str] = {
    "chat": "CHAT_MODEL", "text_completion": "LLM", "generate_content": "LLM",
    "execute_tool": "TOOL", "retrieval": "RETRIEVER", "embeddings": "EMBEDDING",
    "invoke_agent": "AGENT", "create_agent": "AGENT", "invoke_workflow": "WORKFLOW",
}
LANGFUSE_TYPES: dict[str, str] = {"GENERATION": "LLM"}
SPAN_TYPE_KEYS: tuple[tuple[str, Mapping[str, str]], ...] = (
    ("mlflow.spanType", {}),
    ("langfuse.observation.type", LANGFUSE_TYPES),
    ("openinference.span.kind", {}),
    ("gen_ai.operation.name", GENAI_OPERATIONS),
)


class SpanFields(NamedTuple):
    """What the attributes say about a span; ``None`` where they say nothing.

    A NamedTuple rather than a frozen dataclass: one is built per span, and a frozen dataclass's
    ``__init__`` costs several times more."""

    span_type: str
    model: str | None
    input_tokens: int | None
    output_tokens: int | None
    inputs: str | None
    outputs: str | None
    tool_name: str | None
    session_id: str | None
    user_id: str | None
    prompt_version: str | None
    error_type: str | None


def map_attributes(attrs: Mapping[str, Any], *, declared_type: str | None = None) -> SpanFields:
    """Read canonical fields out of ``attrs``.

    ``declared_type`` is a type the container format states outside the attributes (a Langfuse
    observation's ``type``); it ranks just below ``mlflow.spanType``, as the precedence rule says.
    """
    model = _first(attrs, _PROBES["model"])
    return SpanFields(
        span_type=span_type_of(attrs, declared_type=declared_type, has_model=model is not None),
        model=_text_or_none(model),
        input_tokens=as_int(_first(attrs, _PROBES["input_tokens"])),
        output_tokens=as_int(_first(attrs, _PROBES["output_tokens"])),
        inputs=as_text(_first(attrs, _PROBES["inputs"])),
        outputs=as_text(_first(attrs, _PROBES["outputs"])),
        tool_name=_text_or_none(_first(attrs, _PROBES["tool_name"])),
        session_id=_text_or_none(_first(attrs, _PROBES["session_id"])),
        user_id=_text_or_none(_first(attrs, _PROBES["user_id"])),
        prompt_version=_text_or_none(_first(attrs, _PROBES["prompt_version"])),
        error_type=_text_or_none(_first(attrs, _PROBES["error_type"])),
    )


def trace_field(attrs: Mapping[str, Any], name: str) -> str | None:
    """One text field of ``map_attributes(attrs)`` (``session_id``, ``user_id``, …) without mapping
    the rest: a trace looks for these on its spans until each is found."""
    return _text_or_none(_first(attrs, _PROBES[name]))


def span_type_of(attrs: Mapping[str, Any], *, declared_type: str | None = None, has_model: bool = False) -> str:
    """Apply the span-type precedence: mlflow > Langfuse > OpenInference > GenAI > model > UNKNOWN."""
    for index, (key, mapping) in enumerate(SPAN_TYPE_KEYS):
        if index == 1 and declared_type is not None:
            mapped = _span_type(declared_type, LANGFUSE_TYPES)
            if mapped is not None:
                return mapped
        mapped = _span_type(attrs.get(key), mapping)
        if mapped is not None:
            return mapped
    return "LLM" if has_model else "UNKNOWN"


def _span_type(raw: Any, mapping: Mapping[str, str]) -> str | None:
    if raw is None:
        return None
    value = maybe_json(raw)  # MLflow double-encodes: '"AGENT"'
    if not isinstance(value, str) or not value:
        return None
    mapped = mapping.get(value) or mapping.get(value.upper()) or mapping.get(value.lower()) or value.upper()
    return mapped if mapped in SPAN_TYPES and mapped != "UNKNOWN" else None


# --- value helpers ----------------------------------------------------------------------------

#: ``FIELD_KEYS`` with each plain ``Attr`` reduced to its key string, so the hot loop in ``_first``
#: is a dict lookup rather than a method call (mapping runs once per span).
_PROBES: dict[str, tuple[str | Key, ...]] = {
    name: tuple(key.key if type(key) is Attr else key for key in keys) for name, keys in FIELD_KEYS.items()}


def _first(attrs: Mapping[str, Any], keys: tuple[str | Key, ...]) -> Any:
    for key in keys:
        value = attrs.get(key) if type(key) is str else key.get(attrs)
        if value:  # truthy: non-empty for certain; falsy ones need the exact emptiness test
            return value
        if value is not None and value != "" and value != [] and value != {}:
            return value
    return None


def maybe_json(value: Any) -> Any:
    """Decode ``value`` if it is a JSON string; otherwise return it unchanged.

    Lone surrogate escapes in it become U+FFFD (``json_text.loads``): this second decode is where
    an escaped ``\\\\ud800`` in the file turns into an unencodable character.
    """
    if isinstance(value, str) and value[:1] in ('"', "{", "["):
        try:
            return loads(value)
        except ValueError:
            return value
    return value


def as_text(value: Any) -> str | None:
    """Inputs/outputs are stored as text: strings as written, anything else JSON-encoded."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _text_or_none(value: Any) -> str | None:
    value = maybe_json(value) if isinstance(value, str) and value.startswith('"') else value
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def as_int(value: Any) -> int | None:
    """Token counts arrive as ints, floats, numeric strings or JSON; anything else is unknown.

    Integer strings (OTLP's 64-bit ``intValue``) are read exactly, not through a float, so a value
    is never silently rounded. Non-finite numbers (NaN, Infinity, "1e400") count as no number at
    all, like text. Integers are returned whatever their size: whether the store can hold one
    depends on the field, and ``assemble`` reports the times and token counts it cannot hold.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if isfinite(value) else None
    if isinstance(value, str):
        try:
            return int(value)  # accepts surrounding whitespace and a sign, like float() did
        except ValueError:
            pass
        try:
            number = float(value)
        except ValueError:
            return None
        return int(number) if isfinite(number) else None
    return None


def unflatten(attrs: Mapping[str, Any], prefix: str) -> Any:
    """Rebuild ``prefix.0.message.role = x`` style keys into ``[{"message": {"role": x}}]``."""
    lead = prefix + "."
    items = [(key[len(lead):].split("."), value) for key, value in attrs.items() if key.startswith(lead)]
    if not items:
        return None
    root: dict = {}
    for parts, value in items:
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return _lists_from_index_dicts(root)


def _lists_from_index_dicts(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _lists_from_index_dicts(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


# --- OTLP AnyValue ----------------------------------------------------------------------------

def decode_any_value(value: Any) -> Any:
    """Decode one OTLP ``AnyValue`` (JSON or ``MessageToDict`` form) into a plain Python value.

    Lenient on purpose: 64-bit ints come as strings, and a value that is not an AnyValue at all
    (some exporters write plain JSON scalars) is returned unchanged.
    """
    if not isinstance(value, dict):
        return value
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return as_int(value["intValue"])
    if "doubleValue" in value:
        try:
            return float(value["doubleValue"])
        except (TypeError, ValueError):
            return value["doubleValue"]
    if "bytesValue" in value:
        return value["bytesValue"]  # base64 text: JSON-safe and lossless
    if "arrayValue" in value:
        return [decode_any_value(item) for item in (value["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in value:
        return decode_key_values((value["kvlistValue"] or {}).get("values", []))
    return None if not value else value


def decode_key_values(pairs: Any) -> dict[str, Any]:
    """``[{key, value: AnyValue}]`` -> ``{key: value}``; a dict is taken as already decoded."""
    if isinstance(pairs, dict):
        return dict(pairs)
    out: dict[str, Any] = {}
    for pair in pairs or []:
        if isinstance(pair, dict) and "key" in pair:
            key, value = pair["key"], pair.get("value")
            # inlined common case: most attributes are strings
            value = value["stringValue"] if type(value) is dict and "stringValue" in value else decode_any_value(value)
            out[key if type(key) is str else str(key)] = value
    return out
