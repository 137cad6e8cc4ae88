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
from operator import itemgetter
from typing import Any, Mapping, NamedTuple

from server.ingestion.json_text import loads
from tools.models import SPAN_TYPES
from tools.span_types import canonical_span_type

__all__ = [
    "Attr", "Flat", "Sub", "SpanFields", "FIELD_KEYS", "GENAI_OPERATIONS", "LANGFUSE_TYPES",
    "as_int", "as_text", "map_attributes",
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
    "chat": "LLM", "text_completion": "LLM", "generate_content": "LLM",
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


#: Types a span-type source can name (UNKNOWN is what a span gets when none names one).
_KNOWN_TYPES: frozenset[str] = frozenset(SPAN_TYPES) - {"UNKNOWN"}


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
    (model_keys, tokens_in_keys, tokens_out_keys, inputs_keys, outputs_keys, tool_keys, session_keys, user_keys,
     prompt_keys, error_keys, type_keys) = _plan(attrs)
    model = _first(attrs, model_keys) if model_keys else None
    tokens_in = _first(attrs, tokens_in_keys) if tokens_in_keys else None
    tokens_out = _first(attrs, tokens_out_keys) if tokens_out_keys else None
    inputs = _first(attrs, inputs_keys) if inputs_keys else None
    outputs = _first(attrs, outputs_keys) if outputs_keys else None
    tool = _first(attrs, tool_keys) if tool_keys else None
    session = _first(attrs, session_keys) if session_keys else None
    user = _first(attrs, user_keys) if user_keys else None
    prompt = _first(attrs, prompt_keys) if prompt_keys else None
    error = _first(attrs, error_keys) if error_keys else None
    return SpanFields(
        _span_type_in(attrs, type_keys, declared_type, model is not None),
        None if model is None else _text_or_none(model),
        None if tokens_in is None else as_int(tokens_in),
        None if tokens_out is None else as_int(tokens_out),
        None if inputs is None else as_text(inputs),
        None if outputs is None else as_text(outputs),
        None if tool is None else _text_or_none(tool),
        None if session is None else _text_or_none(session),
        None if user is None else _text_or_none(user),
        None if prompt is None else _text_or_none(prompt),
        None if error is None else _text_or_none(error),
    )


def trace_field(attrs: Mapping[str, Any], name: str) -> str | None:
    """One text field of ``map_attributes(attrs)`` (``session_id``, ``user_id``, …) without mapping
    the rest: a trace looks for these on its spans until each is found."""
    keys = _plan(attrs)[_FIELD_INDEX[name]]
    return _text_or_none(_first(attrs, keys)) if keys else None


def span_type_of(attrs: Mapping[str, Any], *, declared_type: str | None = None, has_model: bool = False) -> str:
    """Apply the span-type precedence: mlflow > Langfuse > OpenInference > GenAI > model > UNKNOWN."""
    return _span_type_in(attrs, _TYPE_KEYS, declared_type, has_model)


def _span_type_in(attrs: Mapping[str, Any], type_keys: tuple[tuple[int, str, Mapping[str, str]], ...],
                  declared_type: str | None, has_model: bool) -> str:
    """``span_type_of`` over ``type_keys``, a subset of ``SPAN_TYPE_KEYS`` with their ranks: a key the
    span does not have says nothing, so leaving it out changes no answer. The declared type ranks
    just below rank 0 (``mlflow.spanType``)."""
    pending = declared_type is not None
    for rank, key, mapping in type_keys:
        if pending and rank >= 1:
            pending = False
            mapped = _span_type(declared_type, LANGFUSE_TYPES)
            if mapped is not None:
                return mapped
        mapped = _span_type(attrs.get(key), mapping)
        if mapped is not None:
            return mapped
    if pending:
        mapped = _span_type(declared_type, LANGFUSE_TYPES)
        if mapped is not None:
            return mapped
    return "LLM" if has_model else "UNKNOWN"


def _span_type(raw: Any, mapping: Mapping[str, str]) -> str | None:
    if raw is None:
        return None
    value = maybe_json(raw)  # MLflow double-encodes: '"AGENT"'
    if not isinstance(value, str) or not value:
        return None
    mapped = mapping.get(value) or mapping.get(value.upper()) or mapping.get(value.lower()) or value
    canonical = canonical_span_type(mapped)  # one name per kind: MLflow's CHAT_MODEL is stored as LLM
    return canonical if canonical in _KNOWN_TYPES else None


# --- value helpers ----------------------------------------------------------------------------

#: ``FIELD_KEYS`` with each plain ``Attr`` reduced to its key string, so the hot loop in ``_first``
#: is a dict lookup rather than a method call (mapping runs once per span).
_PROBES: dict[str, tuple[str | Key, ...]] = {
    name: tuple(key.key if type(key) is Attr else key for key in keys) for name, keys in FIELD_KEYS.items()}
#: The order ``map_attributes`` unpacks a plan in: SpanFields' fields after ``span_type``.
_PLAN_FIELDS: tuple[str, ...] = SpanFields._fields[1:]
_FIELD_INDEX: dict[str, int] = {name: index for index, name in enumerate(_PLAN_FIELDS)}
_TYPE_KEYS: tuple[tuple[int, str, Mapping[str, str]], ...] = tuple(
    (rank, key, mapping) for rank, (key, mapping) in enumerate(SPAN_TYPE_KEYS))

# --- plans: which probes can answer, per list of attribute keys --------------------------------
#
# Why: a probe whose key a span does not have answers None whatever the values are (an ``Attr``
# or ``Sub`` reads a missing key; a ``Flat`` finds no key under its prefix; a span-type key that
# is missing says nothing), so dropping it from the precedence tuple changes no result. Which
# probes remain depends only on the span's keys, and spans from one instrumentation share their
# key list, so the pruned tuples are worked out once per distinct key list and looked up after
# that: most fields of most spans then cost nothing, instead of four dict probes each (or a scan
# of every key, for the flattened-message fallbacks).

_Plan = tuple[tuple[Any, ...], ...]
#: ``(slot, rank, probe)``: slot is a field's index in ``_PLAN_FIELDS``, or ``len(_PLAN_FIELDS)``
#: for the span-type keys (whose probe is their ``_TYPE_KEYS`` entry).
_Ranked = tuple[int, int, Any]
_PLANS: dict[tuple[Any, ...], _Plan] = {}
#: Distinct key lists kept; past this the cache starts over (files with index-numbered keys
#: such as ``gen_ai.prompt.17.content`` can have many).
_MAX_PLANS = 4096


def _plan(attrs: Mapping[str, Any]) -> _Plan:
    """Per field in ``_PLAN_FIELDS`` order, the probes that can answer for ``attrs``' keys, then the
    span-type keys it has (as ``(rank, key, mapping)``)."""
    keys = tuple(attrs)
    plan = _PLANS.get(keys)
    if plan is None:
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.clear()
        plan = _PLANS[keys] = _make_plan(keys)
    return plan


def _index_probes() -> tuple[dict[Any, tuple[_Ranked, ...]], dict[str, tuple[_Ranked, ...]], tuple[_Ranked, ...]]:
    """Every probe filed under the key it reads (``Attr``, ``Sub``, span-type keys) or, keyed
    ``"\\n" + prefix``, the prefix it scans (``Flat``); a probe of any other kind is always asked."""
    by_key: dict[Any, list[_Ranked]] = {}
    by_prefix: dict[str, list[_Ranked]] = {}
    always: list[_Ranked] = []
    for slot, name in enumerate(_PLAN_FIELDS):
        for rank, probe in enumerate(_PROBES[name]):
            entry = (slot, rank, probe)
            if type(probe) is str:
                by_key.setdefault(probe, []).append(entry)
            elif isinstance(probe, (Attr, Sub)):
                by_key.setdefault(probe.key, []).append(entry)
            elif isinstance(probe, Flat):
                by_prefix.setdefault("\n" + probe.prefix + ".", []).append(entry)
            else:
                always.append(entry)
    for type_key in _TYPE_KEYS:
        by_key.setdefault(type_key[1], []).append((len(_PLAN_FIELDS), type_key[0], type_key))
    return ({key: tuple(found) for key, found in by_key.items()},
            {needle: tuple(found) for needle, found in by_prefix.items()}, tuple(always))


_BY_KEY, _BY_PREFIX, _ALWAYS = _index_probes()
_SLOT_AND_RANK = itemgetter(0, 1)


def _make_plan(keys: tuple[Any, ...]) -> _Plan:
    """Worked out from the keys alone in a few µs, so a file whose spans all differ stays cheap."""
    hits = list(_ALWAYS)
    for key in keys:
        found = _BY_KEY.get(key)
        if found:
            hits += found
    try:  # one substring search per prefix instead of a loop over keys; a key that holds "\n"
        # followed by a prefix can only add a probe that then finds nothing, never change an answer
        joined: str | None = "\n" + "\n".join(keys)
    except TypeError:  # a key that is not text: ``unflatten`` must still see (and fail on) it, as before
        joined = None
    for needle, found in _BY_PREFIX.items():
        if joined is None or needle in joined:
            hits += found
    slots: list[tuple[Any, ...]] = [()] * (len(_PLAN_FIELDS) + 1)
    for slot, _, probe in sorted(hits, key=_SLOT_AND_RANK):
        slots[slot] += (probe,)
    return tuple(slots)


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
