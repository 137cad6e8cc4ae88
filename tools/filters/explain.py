"""Render a parsed filter as plain English (``filter_explained`` in search results).

The point is to let an agent or a person check that tracesieve understood the filter as they
meant it, so the wording comes from the operator table in ``tools.filters.fields`` and spells out the
two places where the language differs from SQL: span exists-semantics ("one span has …") and
timestamps (shown as UTC dates, relative times as "7 days ago").
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tools.filters.fields import ENGLISH_BY_KIND, OPERATORS, Family, Kind
from tools.span_types import canonical_span_type, stored_names, synonyms_of
from tools.filters.nodes import UNIT_WORDS, And, Comparison, Expr, Not, Or, RelativeTime, SpanExists

__all__ = ["explain", "format_ms"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def explain(expr: Expr | None) -> str:
    """``status is 'OK' and tag 'environment' is 'production' and timestamp after 2026-11-16 10:00 UTC``."""
    if expr is None:
        return "all traces"
    return _node(expr, in_span=False)


def _node(e: Expr, in_span: bool) -> str:
    if isinstance(e, Comparison):
        return _comparison(e, in_span)
    if isinstance(e, SpanExists):
        return "one span has " + _node(e.item, in_span=True)
    if isinstance(e, Not):
        if isinstance(e.item, SpanExists):
            return "no span has " + _node(e.item.item, in_span=True)
        return f"not ({_node(e.item, in_span)})"
    word = " and " if isinstance(e, And) else " or "
    return word.join(_child(i, in_span) for i in e.items)


def _child(e: Expr, in_span: bool) -> str:
    """Parenthesise compound children so "a or (b and c)" cannot be misread."""
    text = _node(e, in_span)
    inner: Expr = e
    if isinstance(e, SpanExists):
        inner = e.item
    elif isinstance(e, Not) and isinstance(e.item, SpanExists):
        inner = e.item.item
    return f"({text})" if isinstance(inner, (And, Or)) else text


def _comparison(c: Comparison, in_span: bool) -> str:
    kind = c.field.kind
    template = ENGLISH_BY_KIND.get((kind, c.op), OPERATORS[c.op].english)
    if in_span and c.op == "=":
        template = "{s} {v}"     # "one span has type TOOL and status ERROR"
    bare = in_span and kind is Kind.ENUM
    return template.format(s=_subject(c), v=_value(c.value, kind, bare)) + _synonyms(c) + _unit_warning(c)


#: Epoch milliseconds of real traces sit between these (1973 and 5138); a literal outside is almost
#: certainly seconds (below) or microseconds/nanoseconds (above), read as a date nobody meant.
_MS_LOW, _MS_HIGH = 100_000_000_000, 100_000_000_000_000


def _unit_warning(c: Comparison) -> str:
    """A warning when a timestamp literal looks like seconds or microseconds, with the fix."""
    if c.field.kind is not Kind.TIMESTAMP:
        return ""
    values = c.value if isinstance(c.value, tuple) else (c.value,)
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool) or v == 0:
            continue
        if abs(v) < _MS_LOW:
            return (f" [warning: {v} looks like epoch seconds, but timestamps are epoch milliseconds; "
                    f"did you mean {v * 1000}?]")
        if abs(v) >= _MS_HIGH:
            scale, unit = (1_000_000, "nanoseconds") if abs(v) >= _MS_HIGH * 1000 else (1_000, "microseconds")
            return (f" [warning: {v} looks like epoch {unit}, but timestamps are epoch milliseconds; "
                    f"did you mean {v // scale}?]")
    return ""


def _synonyms(c: Comparison) -> str:
    """Say which other names a span type matched where a store can hold several (LLM and
    CHAT_MODEL; tools.span_types), so a CHAT_MODEL filter matching OpenInference LLM spans is no
    surprise."""
    if c.field.spec.name != "span.type" or c.op not in ("=", "!=", "IN", "NOT IN"):
        return ""
    values = c.value if isinstance(c.value, tuple) else (c.value,)
    notes = [f"{', '.join(names[:3])} {'is a synonym' if len(names) == 1 else 'are synonyms'} of {v}"
             for v in values if len(stored_names(str(v))) > 1 and (names := synonyms_of(str(v)))]
    notes += [f"{v} is no built-in type: it matches spans whose source declared that custom type"
              for v in values if canonical_span_type(str(v)) is None]
    return f" ({'; '.join(notes)})" if notes else ""


def _subject(c: Comparison) -> str:
    f = c.field
    if f.family is Family.SCORE:
        numeric = isinstance(c.value, (int, float)) or (
            isinstance(c.value, tuple) and not isinstance(c.value[0], str))
        return f"judge '{f.key}' {'verdict' if c.value is not None and not numeric else 'score'}"
    if f.key is not None:
        return f"{f.spec.label} '{f.key}'"
    return f.spec.label


def _value(v: object, kind: Kind, bare: bool) -> str:
    if isinstance(v, tuple):
        return ", ".join(_value(x, kind, bare) for x in v)
    if isinstance(v, RelativeTime):
        return _relative(v)
    if kind is Kind.TIMESTAMP and isinstance(v, int):
        return format_ms(v)
    if isinstance(v, str):
        return v if bare else f"'{v}'"
    return _number(v)  # type: ignore[arg-type]


def format_ms(ms: int) -> str:
    """``2026-11-16 10:00 UTC``; seconds and milliseconds only when present."""
    try:
        dt = _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:  # microseconds or nanoseconds given as ms: beyond any date
        return f"{ms} ms after 1970 (past the year 9999)"
    text = dt.strftime("%Y-%m-%d %H:%M")
    if dt.second or dt.microsecond:
        text += dt.strftime(":%S")
    if dt.microsecond:
        text += f".{dt.microsecond // 1000:03d}"
    return text + " UTC"


def _relative(r: RelativeTime) -> str:
    if not r.amount:
        return "now"
    word = UNIT_WORDS[r.unit] + ("" if r.amount == 1 else "s")
    return f"{_number(r.amount)} {word} {'ago' if r.sign < 0 else 'from now'}"


def _number(n: int | float) -> str:
    return str(int(n)) if isinstance(n, float) and n.is_integer() else str(n)
