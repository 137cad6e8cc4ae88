"""Check a literal against a field's kind and coerce it to the value the AST stores.

Kept apart from the parser because this is where the language's typing rules live: what a
number field accepts, how ISO dates become epoch ms, when a metadata comparison is numeric.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from tools.filters import fields as F
from tools.errors import FilterError
from tools.filters.fields import Kind, ResolvedField
from tools.filters.nodes import Scalar
from tools.span_types import canonical_span_type

__all__ = ["Lit", "coerce", "parse_timestamp"]

_PATTERN_OPS = frozenset({"LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE", "RLIKE"})
_NUMERIC = re.compile(r"\s*-?(\d+(\.\d*)?|\.\d+)\s*\Z")
#: fail(reason, position, length, hint) -> FilterError, supplied by the parser (it owns the text).
Fail = Callable[..., FilterError]


@dataclass(frozen=True)
class Lit:
    """A literal as written: kind is 'str' | 'num' | 'bool' | 'now'."""

    kind: str
    value: object
    pos: int
    text: str


def coerce(fail: Fail, field: ResolvedField, op: str, lit: Lit) -> Scalar:
    """Check ``lit`` against the field's kind and return the value the AST stores."""
    kind, name = field.kind, field.name
    ordering = op in ("<", "<=", ">", ">=")
    if op == "RLIKE":
        _check_regex(fail, lit)

    def bad(reason: str, hint: str | None = None) -> FilterError:
        example = f"Example: {field.spec.example}."
        return fail(reason, lit.pos, len(lit.text), example if hint is None else hint)

    if kind is Kind.PROMPT:
        text = str(lit.value) if lit.kind == "str" else ""
        if text.count("/") != 1 or not all(part.strip() for part in text.split("/")):
            raise bad(f"'{name}' takes a prompt version written 'name/version'; got {lit.text}.")
        return text
    if kind in (Kind.TEXT, Kind.LIST, Kind.SEARCH):
        if lit.kind == "str":
            return str(lit.value)
        if lit.kind == "num":
            return lit.text
        raise bad(f"'{name}' is text; got {lit.text}.")
    if kind is Kind.NUMBER:
        if lit.kind == "num":
            return lit.value  # type: ignore[return-value]
        if lit.kind == "str" and _NUMERIC.match(str(lit.value)):
            return _number(str(lit.value))
        raise bad(f"'{name}' is a number; got {lit.text}.")
    if kind is Kind.TIMESTAMP:
        if lit.kind == "now":
            return lit.value  # type: ignore[return-value]
        if lit.kind == "num":
            return round(lit.value)  # type: ignore[call-overload]
        if lit.kind == "str":
            ms = parse_timestamp(str(lit.value))
            if ms is not None:
                return ms
        raise bad(f"'{name}' takes epoch milliseconds, a quoted ISO date like '2026-11-16T10:00:00Z', "
                  f"or now() - 7d; got {lit.text}.")
    if kind is Kind.ENUM:
        given = lit.text if lit.kind != "str" else str(lit.value)
        if op in _PATTERN_OPS:  # MLflow allows LIKE / ILIKE on status and span type: a pattern, not a value
            return given
        if field.spec.name == "span.type":
            # 'CHAT_MODEL', 'GENERATION', 'chat' -> 'LLM' (tools.span_types); any other name is a type
            # the source declared itself (MLflow allows custom span types), matched as written
            return canonical_span_type(given) or given
        for v in field.spec.values:
            if v.upper() == given.strip().upper():
                return v
        guess = difflib.get_close_matches(given.upper(), field.spec.values, n=1)
        raise bad(f"'{name}' is one of {', '.join(field.spec.values)}; got '{given}'."
                  + (f" Did you mean '{guess[0]}'?" if guess else ""), "")
    # JSON_KEY and SCORE: text or number, decided by the literal
    if lit.kind == "now":
        raise bad(f"'{name}' does not take a time; got {lit.text}.")
    if ordering and lit.kind != "num":
        raise bad(f"Operator '{op}' on '{name}' needs a number; got {lit.text}.")
    if kind is Kind.SCORE:
        if lit.kind == "num":
            return lit.value  # type: ignore[return-value]
        verdict = str(lit.value).strip().lower() if lit.kind == "str" else ""
        if verdict in F.VERDICTS:
            return verdict
        raise bad(f"'{name}' is compared with 'pass', 'fail', 'unknown' or a number; got {lit.text}.")
    if lit.kind == "bool":
        return "true" if lit.value else "false"
    if lit.kind == "num" and op in ("LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE", "CONTAINS"):
        return lit.text
    return lit.value  # type: ignore[return-value]


def _check_regex(fail: Fail, lit: Lit) -> None:
    """RLIKE takes a regular expression: a broken one is an error here, not in the store."""
    try:
        re.compile(str(lit.value))
    except re.error as exc:
        raise fail(f"'{lit.value}' is not a regular expression ({exc.msg}).", lit.pos, len(lit.text),
                   "Example: name RLIKE '^rag_.*'.") from None


def _number(s: str) -> int | float:
    s = s.strip()
    return float(s) if "." in s else int(s)


def parse_timestamp(s: str) -> int | None:
    """Epoch ms from a numeric string or an ISO date/datetime (naive means UTC)."""
    if _NUMERIC.match(s):
        return round(_number(s))
    try:
        dt = datetime.fromisoformat(s.strip())
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return round(dt.timestamp() * 1000)


