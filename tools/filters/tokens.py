"""What the lexer produces and how a filter error points into the text: shared by the lexer, the
size/depth limits checked before parsing, and the parser."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from tools.errors import FilterError

_EXCERPT_WIDTH = 100


class TokenType(str, Enum):
    IDENT = "identifier"
    STRING = "string"
    NUMBER = "number"
    DURATION = "duration"
    OP = "operator"
    KEYWORD = "keyword"
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    MINUS = "-"
    PLUS = "+"
    EOF = "end"


@dataclass(frozen=True)
class Token:
    """One lexeme. ``value``: decoded string, int/float, canonical operator, upper-cased keyword,
    the tuple of name segments for identifiers, or ``(amount, unit)`` for durations like ``7d``."""

    type: TokenType
    text: str
    pos: int
    value: object = None

    @property
    def end(self) -> int:
        return self.pos + len(self.text)

    def shown(self) -> str:
        """How error messages quote the token: strings as written, everything else in '…'."""
        if self.type is TokenType.EOF:
            return "the end of the filter"
        return self.text if self.type is TokenType.STRING else f"'{self.text}'"


def filter_error(text: str, reason: str, pos: int | None = None, length: int = 1,
                 hint: str = "") -> FilterError:
    """Build a FilterError whose caret excerpt stays readable for long or multi-line filters.

    Newlines and tabs become spaces (one for one, so positions still line up), and filters
    longer than ~100 characters are cut to a window around the error with '…' marks.
    """
    shown = re.sub(r"\s", " ", text)
    if pos is None:
        return FilterError(reason, text=shown, hint=hint)
    if len(shown) <= _EXCERPT_WIDTH:
        return FilterError(reason, text=shown, position=pos, length=length, hint=hint)
    start = max(0, pos - 40)
    end = min(len(shown), max(pos + length, start + _EXCERPT_WIDTH - 20) + 1)
    prefix, suffix = ("…" if start else ""), ("…" if end < len(shown) else "")
    error = FilterError(reason, text=prefix + shown[start:end] + suffix,
                        position=pos - start + len(prefix), length=length, hint=hint)
    error.text, error.position = text, pos   # the attributes stay absolute; only the excerpt is cut
    return error
