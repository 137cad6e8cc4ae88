"""The reader's per-span shortcuts give exactly what the plain code gives.

Two shortcuts, each compared with its reference where the two could part:

* ``checked_span`` builds a Span without validation when every value already has its field's
  exact type; over a grid of odd values per field it must match ``Span(**fields)`` slot for
  slot, or raise the same ValidationError.
* ``map_attributes`` asks only the probes whose keys a span has (a plan cached per key list);
  over the equivalence corpus and random attribute maps it must match the full precedence walk.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from pydantic import ValidationError

from server.ingestion import attributes
from server.ingestion.assemble import build_trace, make_span
from server.ingestion.attributes import (FIELD_KEYS, LANGFUSE_TYPES, SPAN_TYPE_KEYS, Attr, Flat, SpanFields, Sub,
                                         as_int, as_text, map_attributes, maybe_json,
                                         span_type_of, trace_field)
from server.ingestion.checked_span import _ENABLED, SPAN_FIELDS, checked_span
from server.ingestion.otlp_values import decode_key_values
from tests.test_ingest_equivalence import corpus_lines
from tools.models import Span

# --- checked_span -------------------------------------------------------------------------------


class _Str(str):
    pass


class _Int(int):
    pass


class _Dict(dict):  # type: ignore[type-arg]
    pass


class _List(list):  # type: ignore[type-arg]
    pass


_GOOD: dict[str, Any] = {
    "span_id": "a1a1a1a1a1a1a1a1", "parent_span_id": "b2b2b2b2b2b2b2b2", "name": "chat", "span_type": "LLM",
    "start_time_ns": 1, "end_time_ns": 2, "status": "OK", "status_message": "fine", "inputs": "in",
    "outputs": "out", "model": "gpt-4o", "input_tokens": 3, "output_tokens": 4, "tool_name": "t",
    "attributes": {"k": "v", "n": {"nested": [1]}}, "events": [{"name": "e"}],
}
_TEXT = ["", "x", "\ud800", _Str("x"), 1, 1.5, True, b"x", None, ["x"]]
_NUMBERS = [0, -(2**63), 2**70, _Int(5), True, False, 1.0, 1.5, "1", None, float("nan")]
_ODD: dict[str, list[Any]] = {
    "span_id": _TEXT, "parent_span_id": _TEXT, "name": _TEXT, "status_message": _TEXT, "inputs": _TEXT,
    "outputs": _TEXT, "model": _TEXT, "tool_name": _TEXT,
    "span_type": ["LLM", "TOOL", "UNKNOWN", "llm", "SPAN", _Str("LLM"), None, 1],
    "status": ["OK", "ERROR", "UNSET", "ok", _Str("OK"), None, 1],
    "start_time_ns": _NUMBERS, "end_time_ns": _NUMBERS, "input_tokens": _NUMBERS, "output_tokens": _NUMBERS,
    "attributes": [{}, {1: "int key"}, _Dict(a=1), [], None, "x", [("a", 1)]],
    "events": [[], [1, {"a": 2}], _List([1]), (1,), None, "x", {}],
}


def _slots(span: Span) -> tuple[Any, ...]:
    """Everything a Span holds, with each value's exact type."""
    values = [(name, type(value), value) for name, value in span.__dict__.items()]
    return (values, span.model_fields_set, span.__pydantic_extra__, span.__pydantic_private__)


def _outcome(build: Any, values: dict[str, Any]) -> Any:
    try:
        return _slots(build(values))
    except ValidationError as exc:
        return ("invalid", exc.errors(include_url=False, include_input=False))


def test_the_shortcut_is_enabled_and_knows_every_span_field() -> None:
    assert SPAN_FIELDS == tuple(Span.model_fields)
    assert set(_ODD) == set(SPAN_FIELDS)
    assert _ENABLED  # if pydantic or the model changes shape, spans are validated again (slow, not wrong)


@pytest.mark.parametrize("field", SPAN_FIELDS)
def test_a_checked_span_is_the_validated_span_for_every_odd_value(field: str) -> None:
    for odd in _ODD[field]:
        values = dict(_GOOD, **{field: odd})
        fast = _outcome(lambda v: checked_span(*(v[name] for name in SPAN_FIELDS)), values)
        assert fast == _outcome(lambda v: Span(**v), values), (field, odd)


def test_a_checked_span_owns_its_attributes_and_events() -> None:
    attrs, events = {"k": "v"}, [{"name": "e"}]
    span = checked_span(*(dict(_GOOD, attributes=attrs, events=events)[name] for name in SPAN_FIELDS))
    assert span.attributes == attrs and span.attributes is not attrs
    assert span.events == events and span.events is not events
    assert span == Span(**dict(_GOOD, attributes=attrs, events=events))


def test_make_span_still_reports_a_stated_value_of_the_wrong_type() -> None:
    with pytest.raises(ValidationError, match="model"):
        make_span(span_id="a", parent_span_id=None, name="n", start=1, end=2, status="UNSET", status_message=None,
                  attributes={}, events=[], model=17)
    with pytest.raises(ValidationError, match="not_a_field"):
        make_span(span_id="a", parent_span_id=None, name="n", start=1, end=2, status="UNSET", status_message=None,
                  attributes={}, events=[], not_a_field="x")


# --- map_attributes ------------------------------------------------------------------------------

def _reference_first(attrs: dict[str, Any], keys: tuple[Any, ...]) -> Any:
    for key in keys:
        value = key.get(attrs)
        if value is not None and value != "" and value != [] and value != {}:
            return value
    return None


def _reference_text(value: Any) -> str | None:
    value = maybe_json(value) if isinstance(value, str) and value.startswith('"') else value
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _reference_type(attrs: dict[str, Any], declared_type: str | None, has_model: bool) -> str:
    for index, (key, mapping) in enumerate(SPAN_TYPE_KEYS):
        if index == 1 and declared_type is not None:
            mapped = attributes._span_type(declared_type, LANGFUSE_TYPES)
            if mapped is not None:
                return mapped
        mapped = attributes._span_type(attrs.get(key), mapping)
        if mapped is not None:
            return mapped
    return "LLM" if has_model else "UNKNOWN"


def _reference_map(attrs: dict[str, Any], declared_type: str | None = None) -> SpanFields:
    """The full precedence walk: every probe of every field, and every span-type key."""
    found = {name: _reference_first(attrs, keys) for name, keys in FIELD_KEYS.items()}
    converted = {name: (as_int(value) if name.endswith("_tokens") else as_text(value) if name in ("inputs", "outputs")
                        else _reference_text(value)) for name, value in found.items()}
    return SpanFields(span_type=_reference_type(attrs, declared_type, found["model"] is not None), **converted)


def _probe_keys() -> list[str]:
    keys = [key.key for keys in FIELD_KEYS.values() for key in keys if isinstance(key, (Attr, Sub))]
    keys += [key for key, _ in SPAN_TYPE_KEYS]
    keys += [f"{key.prefix}.{rest}" for keys in FIELD_KEYS.values() for key in keys if isinstance(key, Flat)
             for rest in ("0.role", "1.content", "0.message.content", "x")]
    return keys + ["gen_ai.promptx", "other.key", "llm.input_messages", "x\ngen_ai.prompt.0.role",
                   _Str("gen_ai.prompt.1.role")]


_VALUES = [None, "", [], {}, 0, False, True, 7, 2.5, float("inf"), "x", '"quoted"', '"AGENT"', "llm", "chat",
           "GENERATION", "tool", "UNKNOWN", "SPAN", "execute_tool", " 12 ", "1e400", '{"input_tokens": 3}',
           {"input_tokens": 5, "output_tokens": "6"}, "{broken", [1, "a"], {"a": 1}, '"\\ud800"']


def _attribute_maps() -> list[dict[Any, Any]]:
    maps = []
    for line in corpus_lines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        for resource_spans in (doc.get("resourceSpans") or []) if isinstance(doc, dict) else []:
            for scope_spans in resource_spans.get("scopeSpans") or [] if isinstance(resource_spans, dict) else []:
                maps += [decode_key_values(span.get("attributes")) for span in scope_spans.get("spans") or []
                         if isinstance(span, dict)]
    rng = random.Random(7)
    keys = _probe_keys()
    for _ in range(3000):
        maps.append({rng.choice(keys): rng.choice(_VALUES) for _ in range(rng.randint(0, 7))})
    return maps


def _result(call: Any) -> Any:
    try:
        return ("ok", repr(call()))
    except Exception as exc:  # noqa: BLE001 - the same failure is part of the same behaviour
        return ("raised", type(exc), str(exc))


def test_map_attributes_matches_the_full_precedence_walk() -> None:
    odd_keys = [{1: "int key", "gen_ai.prompt.0.role": "user"}, {2: "x"}, {b"gen_ai.prompt.0": "bytes key"}]
    for attrs in _attribute_maps() + odd_keys:
        for declared in (None, "GENERATION", "SPAN", "tool", ""):
            assert _result(lambda: map_attributes(attrs, declared_type=declared)) == \
                _result(lambda: _reference_map(attrs, declared)), (attrs, declared)
        for name in ("session_id", "user_id", "prompt_version"):
            assert _result(lambda: trace_field(attrs, name)) == \
                _result(lambda: _reference_text(_reference_first(attrs, FIELD_KEYS[name]))), (attrs, name)
        for declared in (None, "GENERATION"):
            for has_model in (True, False):
                assert _result(lambda: span_type_of(attrs, declared_type=declared, has_model=has_model)) == \
                    _result(lambda: _reference_type(attrs, declared, has_model)), attrs


def test_the_plan_cache_stays_bounded() -> None:
    for number in range(attributes._MAX_PLANS + 10):
        map_attributes({f"gen_ai.prompt.{number}.content": "x"})
    assert len(attributes._PLANS) <= attributes._MAX_PLANS
    assert map_attributes({"gen_ai.prompt.3.content": "x"}).inputs == '[{"content": "x"}]'


# --- trace roll-ups --------------------------------------------------------------------------------

def test_trace_token_totals_sum_llm_spans_only_and_keep_zero() -> None:
    def span(span_id: str, kind: str, tokens: Any, start: int) -> Span:
        attrs = {"mlflow.spanType": kind, "gen_ai.usage.input_tokens": tokens, "gen_ai.request.model": f"m-{span_id}"}
        return make_span(span_id=span_id, parent_span_id=None if span_id == "r" else "r", name=span_id, start=start,
                         end=start + 1, status="OK", status_message=None, attributes=attrs, events=[])

    trace = build_trace("t" * 32, [span("r", "AGENT", 100, 0), span("a", "LLM", 0, 3), span("b", "CHAT_MODEL", 5, 2),
                                   span("c", "TOOL", 7, 1)], source="otlp")
    assert (trace.input_tokens, trace.output_tokens, trace.model) == (5, None, "m-b")
