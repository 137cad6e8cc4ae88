"""Build a ``Span`` without pydantic re-checking values whose types are already exactly right.

Why: validating a Span cost ~6 µs, a quarter of everything the OTLP reader did per span, and
almost all of it went on confirming what ``make_span`` had just built (a ``str`` is a ``str``)
and on copying the attribute dict. ``checked_span`` first tests every value's *exact* type, the
cases where pydantic (lax mode, no constraints on these fields) returns the value unchanged,
and only then builds the model directly, the way ``model_construct`` does (which is itself
slower than validating); checks and build cost ~2 µs. Anything else (a ``str`` subclass, a
``bool`` or ``float`` count, an ``int`` status message, a name outside the ``Literal``) goes
through normal validation, so it is coerced, or rejected with the same ``ValidationError``,
exactly as before.

The result matches a validated Span slot for slot: field values in field order, all fields
marked as set, no extra or private values, and its own copies of ``attributes`` and ``events``
(validation copies containers too; the copies are shallow, as pydantic's are).
``tests/test_ingest_span_shortcuts.py`` compares the two over a grid of odd values per field,
and checks that the table below still describes ``tools/models.py`` (so the shortcut is in use).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from tools.models import SPAN_TYPES, Span, SpanStatus, SpanType

__all__ = ["SPAN_FIELDS", "checked_span"]

_TEXT: Any = str | None
_COUNT: Any = int | None
#: ``Span``'s fields in declaration order, with the annotation each check in ``checked_span`` assumes.
_EXPECTED: tuple[tuple[str, Any], ...] = (
    ("span_id", str), ("parent_span_id", _TEXT), ("name", str), ("span_type", SpanType), ("start_time_ns", int),
    ("end_time_ns", int), ("status", SpanStatus), ("status_message", _TEXT), ("inputs", _TEXT), ("outputs", _TEXT),
    ("model", _TEXT), ("input_tokens", _COUNT), ("output_tokens", _COUNT), ("tool_name", _TEXT),
    ("attributes", dict), ("events", list))
#: The order ``checked_span`` takes its values in.
SPAN_FIELDS: tuple[str, ...] = tuple(name for name, _ in _EXPECTED)
_SPAN_TYPES = frozenset(SPAN_TYPES)
_STATUSES = frozenset(SpanStatus.__args__)  # type: ignore[attr-defined]
_FIELD_SET = frozenset(SPAN_FIELDS)
_setattr = object.__setattr__
_new = object.__new__

#: The instance slots ``model_construct`` fills; a pydantic without them gets validated spans.
_SLOTS = ("__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")


def _can_build_directly() -> bool:
    """Building directly is only right while ``Span`` has exactly these fields and types, no
    config, hooks or constraints that validation would apply, and pydantic keeps its state in the
    slots filled below; otherwise every span is validated (slower, never wrong)."""
    try:
        decorators = Span.__pydantic_decorators__
        fields = tuple((name, field.annotation) for name, field in Span.model_fields.items())
        return (fields == _EXPECTED and set(_SLOTS) <= set(BaseModel.__slots__)
                and Span.__pydantic_post_init__ is None and not Span.__private_attributes__
                and not Span.__pydantic_root_model__ and dict(Span.model_config) == {"extra": "forbid"}
                and not decorators.field_validators and not decorators.model_validators
                and not decorators.validators and not decorators.root_validators
                and not any(field.metadata for field in Span.model_fields.values()))
    except AttributeError:  # a pydantic whose internals moved
        return False


_ENABLED = _can_build_directly()


def checked_span(span_id: Any, parent_span_id: Any, name: Any, span_type: Any, start_time_ns: Any,
                 end_time_ns: Any, status: Any, status_message: Any, inputs: Any, outputs: Any, model: Any,
                 input_tokens: Any, output_tokens: Any, tool_name: Any, attributes: Any, events: Any) -> Span:
    """``Span(**fields)`` for the values in ``SPAN_FIELDS`` order, validated only where needed."""
    if (_ENABLED and type(span_id) is str and type(name) is str and type(start_time_ns) is int
            and type(end_time_ns) is int and type(attributes) is dict and type(events) is list
            and type(span_type) is str and span_type in _SPAN_TYPES and type(status) is str and status in _STATUSES
            and (parent_span_id is None or type(parent_span_id) is str)
            and (status_message is None or type(status_message) is str)
            and (inputs is None or type(inputs) is str) and (outputs is None or type(outputs) is str)
            and (model is None or type(model) is str) and (tool_name is None or type(tool_name) is str)
            and (input_tokens is None or type(input_tokens) is int)
            and (output_tokens is None or type(output_tokens) is int)):
        span = _new(Span)
        _setattr(span, "__dict__", {
            "span_id": span_id, "parent_span_id": parent_span_id, "name": name, "span_type": span_type,
            "start_time_ns": start_time_ns, "end_time_ns": end_time_ns, "status": status,
            "status_message": status_message, "inputs": inputs, "outputs": outputs, "model": model,
            "input_tokens": input_tokens, "output_tokens": output_tokens, "tool_name": tool_name,
            "attributes": attributes.copy(), "events": events.copy()})
        _setattr(span, "__pydantic_fields_set__", set(_FIELD_SET))
        _setattr(span, "__pydantic_extra__", None)
        _setattr(span, "__pydantic_private__", None)
        return span
    return Span(span_id=span_id, parent_span_id=parent_span_id, name=name, span_type=span_type,
                start_time_ns=start_time_ns, end_time_ns=end_time_ns, status=status, status_message=status_message,
                inputs=inputs, outputs=outputs, model=model, input_tokens=input_tokens, output_tokens=output_tokens,
                tool_name=tool_name, attributes=attributes, events=events)
