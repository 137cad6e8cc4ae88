"""What compiling a filter means, whatever the SQL dialect: shared by every engine's ``filter_sql``.

Each engine spells SQL its own way (parameters, JSON access, list functions), but the meaning of a
filter must not depend on the engine: a synonym of a span type, whether a literal compares as a
number, where NULL sort values go in keyset paging. Those decisions live here once, so a change to
the filter language lands in every engine at the same time.
"""

from __future__ import annotations

from typing import Any

from tools.filters.fields import Kind
from tools.filters.nodes import Comparison, OrderKey
from tools.span_types import stored_names

__all__ = ["BIG", "TEXT_MAX", "SET_OPS", "is_numeric_literal", "null_sentinel", "sorts_as_number",
           "span_type_names"]

# Keyset sorting: NULL sort values are replaced by a sentinel at the far end of the order, so
# NULLs sort last in both directions and "strictly after" stays a plain comparison.
BIG = 9223372036854775807
#: The largest code point: sorts after every real string (binary / UTF-8 byte order alike).
TEXT_MAX = chr(0x10FFFF)
#: Equality on span.type becomes set membership over the type's stored names.
SET_OPS = {"=": "IN", "IN": "IN", "!=": "NOT IN", "NOT IN": "NOT IN"}


def is_numeric_literal(value: Any) -> bool:
    """Whether a comparison's value (or the first of an IN list) is a number, so a JSON value is
    compared as one rather than as text."""
    first = value[0] if isinstance(value, tuple) else value
    return isinstance(first, (int, float)) and not isinstance(first, bool)


def sorts_as_number(key: OrderKey) -> bool:
    return key.field.kind in (Kind.NUMBER, Kind.TIMESTAMP)


def null_sentinel(key: OrderKey) -> int | str:
    """The value NULL sorts as, at the end of ``key``'s order in either direction."""
    if sorts_as_number(key):
        return -BIG if key.descending else BIG
    return "" if key.descending else TEXT_MAX


def span_type_names(c: Comparison) -> tuple[str, ...] | None:
    """For ``span.type`` equality or membership, every name a store may hold for the types asked
    (LLM spans written as CHAT_MODEL by older loads too); None for any other comparison."""
    if c.field.spec.name != "span.type" or c.op not in SET_OPS:
        return None
    values = c.value if isinstance(c.value, tuple) else (c.value,)
    return tuple(dict.fromkeys(name for v in values for name in stored_names(str(v))))
