"""How big and how deep a filter may be, checked before parsing.

The parser recurses once per ``NOT`` and per parenthesis, and every condition becomes SQL that
DuckDB must plan: an audit's 330 nested parentheses and 988 ``NOT``s hit Python's recursion
limit (which the MCP SDK masks as a bare "Error executing tool"), and a 10 MB ``CONTAINS``
literal, 3,000 ORs or 20,000 ``IN`` values took seconds. These bounds are far above any filter a
person or an agent writes by hand, keep the parse and the plan to milliseconds, and every
refusal says what to do instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from tools.errors import FilterError
from tools.filters.tokens import Token, TokenType, filter_error

MAX_CHARS = 20_000
MAX_DEPTH = 32
MAX_CONDITIONS = 200
MAX_VALUES = 1_000

_MANY_IDS = "To select many traces by id, pass them as trace_ids (tag_trace) or tag them once and filter by the tag."
_CONDITION_WORDS = frozenset({"IN", "LIKE", "ILIKE", "CONTAINS", "IS"})


def check_size(text: str) -> None:
    """Refuse a filter longer than ``MAX_CHARS`` before tokenizing it."""
    if len(text) > MAX_CHARS:
        raise FilterError(
            f"The filter is {len(text):,} characters long; the limit is {MAX_CHARS:,}.",
            hint="Match a shorter distinctive part of the text (CONTAINS 'a phrase', not a whole document). "
                 + _MANY_IDS)


def check_shape(text: str, tokens: Sequence[Token]) -> None:
    """Refuse nesting deeper than ``MAX_DEPTH``, more than ``MAX_CONDITIONS`` conditions or
    ``MAX_VALUES`` literal values. Depth counts each open parenthesis and each ``NOT`` still
    waiting for its condition, the same things the parser recurses on."""
    groups: list[int] = []   # per open '(': how much depth it (and the NOTs before it) added
    depth = pending = conditions = values = 0
    for tok in tokens:
        if tok.type is TokenType.KEYWORD and tok.value == "NOT":
            pending += 1
        elif tok.type is TokenType.LPAREN:
            groups.append(pending + 1)
            depth, pending = depth + pending + 1, 0
        elif tok.type is TokenType.RPAREN:
            depth -= groups.pop() if groups else 0
        else:
            if tok.type is TokenType.OP or (tok.type is TokenType.KEYWORD and tok.value in _CONDITION_WORDS):
                conditions += 1
            elif tok.type in (TokenType.STRING, TokenType.NUMBER):
                values += 1
            pending = 0
        if depth + pending > MAX_DEPTH:
            raise filter_error(text, f"The filter nests deeper than {MAX_DEPTH} levels of parentheses and NOT "
                               f"at position {tok.pos}.", tok.pos, max(1, len(tok.text)),
                               "Remove redundant parentheses; NOT NOT x is x; write NOT (a OR b) as "
                               "NOT a AND NOT b.")
        if conditions > MAX_CONDITIONS:
            raise filter_error(text, f"The filter has more than {MAX_CONDITIONS} conditions (at position "
                               f"{tok.pos}).", tok.pos, max(1, len(tok.text)),
                               "Combine equalities on one field into IN ('a', 'b', …). " + _MANY_IDS)
        if values > MAX_VALUES:
            raise filter_error(text, f"The filter has more than {MAX_VALUES:,} values (at position {tok.pos}).",
                               tok.pos, max(1, len(tok.text)), _MANY_IDS)
