"""Tokenizer for the filter language: every token keeps its character position.

Positions are what make errors useful (a caret under the bad token instead of MLflow's
"Invalid clause(s)"), so the lexer never normalises the text it reports on; it only decodes
quoted strings and keys into ``Token.value``.
"""

from __future__ import annotations

import re
from tools.filters.limits import check_shape, check_size
from tools.filters.tokens import Token, TokenType, filter_error

__all__ = ["KEYWORDS", "Token", "TokenType", "filter_error", "tokenize"]


#: Words that are never field names (matched case-insensitively, only as a single bare segment).
KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "LIKE", "ILIKE", "RLIKE", "CONTAINS", "IS", "NULL",
                      "TRUE", "FALSE", "ASC", "DESC"})

#: Comparison operators, longest first; value is the canonical spelling.
_OPS = (("<=", "<="), (">=", ">="), ("<>", "!="), ("!=", "!="), ("==", "="), ("=", "="),
        ("<", "<"), (">", ">"))
_PUNCT = {"(": TokenType.LPAREN, ")": TokenType.RPAREN, ",": TokenType.COMMA,
          "-": TokenType.MINUS, "+": TokenType.PLUS}
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SEGMENT = re.compile(r"[A-Za-z0-9_]+")   # after a dot a key part may start with a digit
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([A-Za-z_][A-Za-z0-9_]*)")
_NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")
#: What to say about characters people bring from other query languages.
_CHAR_HINTS = {"&": "Use AND to combine conditions.", "|": "Use OR to combine conditions.",
               "!": "Use != to compare or NOT to negate.", ";": "A filter is one expression; remove ';'.",
               "[": "Write lists as IN ('a', 'b').", "]": "Write lists as IN ('a', 'b')."}
def _quoted(text: str, i: int, quote: str, what: str) -> tuple[str, int]:
    """Decode a quoted run starting at ``text[i] == quote``; a doubled quote is a literal one."""
    out, j = [], i + 1
    while j < len(text):
        if text[j] == quote:
            if j + 1 < len(text) and text[j + 1] == quote:
                out.append(quote)
                j += 2
                continue
            return "".join(out), j + 1
        out.append(text[j])
        j += 1
    if what == "string":
        raise filter_error(text, f"Unclosed quote at position {i}.", i, 1,
                           f"Close the string with {quote}; write {quote}{quote} for a {quote} inside it.")
    raise filter_error(text, f"Unclosed backtick at position {i}.", i, 1,
                       "Close the quoted key with `, e.g. tags.`mlflow.user`.")


def _name(text: str, i: int) -> tuple[tuple[str, ...], int]:
    """A dotted name: bare segments, or `back-ticked` / "double-quoted" ones after a dot."""
    segments: list[str] = []
    while True:
        c = text[i] if i < len(text) else ""
        if c == "`" or (c == '"' and segments):
            seg, i = _quoted(text, i, c, "key")
            if not seg:
                raise filter_error(text, f"Empty quoted name at position {i - 2}.", i - 2, 2)
        elif m := (_SEGMENT if segments else _BARE).match(text, i):
            seg, i = m.group(), m.end()
        else:
            raise filter_error(text, f"Expected a name after '.' at position {i - 1}.", i - 1, 1,
                               "Write keys with special characters in backticks, e.g. tags.`my key`.")
        segments.append(seg)
        if i < len(text) and text[i] == ".":
            i += 1
            continue
        return tuple(segments), i


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens ending with one EOF token; raise FilterError on bad characters
    and on filters past the bounds in ``limits``."""
    check_size(text)
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        start = i
        if c in "'\"":
            value, i = _quoted(text, i, c, "string")
            tokens.append(Token(TokenType.STRING, text[start:i], start, value))
        elif m := _DURATION.match(text, i):
            i = m.end()
            tokens.append(Token(TokenType.DURATION, m.group(), start, (_num(m.group(1)), m.group(2))))
        elif m := _NUMBER.match(text, i):
            i = m.end()
            tokens.append(Token(TokenType.NUMBER, m.group(), start, _num(m.group())))
        elif c == "`" or _BARE.match(text, i):
            segments, i = _name(text, i)
            word = text[start:i]
            if len(segments) == 1 and c != "`" and word.upper() in KEYWORDS:
                tokens.append(Token(TokenType.KEYWORD, word, start, word.upper()))
            else:
                tokens.append(Token(TokenType.IDENT, word, start, segments))
        elif op := next((o for o in _OPS if text.startswith(o[0], i)), None):
            i += len(op[0])
            tokens.append(Token(TokenType.OP, op[0], start, op[1]))
        elif c in _PUNCT:
            i += 1
            tokens.append(Token(_PUNCT[c], c, start, c))
        else:
            raise filter_error(text, f"Unexpected character '{c}' at position {i}.", i, 1,
                               _CHAR_HINTS.get(c, ""))
    tokens.append(Token(TokenType.EOF, "", n))
    check_shape(text, tokens)
    return tokens


def _num(s: str) -> int | float:
    return float(s) if "." in s else int(s)
