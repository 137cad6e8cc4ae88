"""JSON text -> Python values, with lone UTF-16 surrogate escapes turned into U+FFFD.

Why: JSON lets a string hold half of a surrogate pair (``"\\ud800"``; JavaScript exporters write
one whenever they cut text at a UTF-16 boundary), ``json.loads`` accepts it and returns a ``str``
holding a lone surrogate, and such a ``str`` cannot be encoded as UTF-8: the store would fail on
the whole batch that holds it. Replacing it with U+FFFD (what any UTF-8 decoder does with a
broken sequence) keeps the rest of the text and of the trace as written.

The fix works on the JSON *text*, before parsing: one regex scan per file (no per-value work)
that finds nothing unless the text contains ``\\ud``/``\\uD``. The replacement escape has the
same length as the one it replaces, so error positions still point at the source.
Valid pairs (``"\\ud83d\\ude00"``, an emoji written with ``ensure_ascii``) are left alone.
Readers that decode JSON a second time (MLflow's JSON-encoded attribute values) use ``loads``,
because an escaped escape (``"\\\\ud800"``) only becomes a surrogate on that second decode.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["MAX_DEPTH", "TooDeepError", "check_depth", "loads", "parse", "replace_lone_surrogates"]

#: Deepest nesting of arrays/objects accepted. OTLP spends three levels per nested AnyValue and
#: five on its envelope, so this still allows 40 levels of nested attribute values.
MAX_DEPTH = 128
_SCREEN_DEPTH = 32
#: ``_SCREEN_DEPTH`` openers in a row, each optionally after a key: how deep values start.
_DEEP_RUN = re.compile(r'(?:[\[{]\s*(?:"(?:[^"\\]|\\.)*"\s*:\s*)?){%d}' % _SCREEN_DEPTH)


class TooDeepError(ValueError):
    """A JSON value nested deeper than ``MAX_DEPTH``."""

    def __init__(self) -> None:
        super().__init__(f"nested over {MAX_DEPTH} levels deep (the limit is {MAX_DEPTH}); no trace format needs "
                         "that, so the value is likely corrupt or hostile")


def parse(text: str) -> Any:
    """``json.loads`` for a document whose surrogates are already replaced, depth-bounded."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeepError() from None
    if _DEEP_RUN.search(text):
        check_depth(value)
    return value


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise ``TooDeepError`` if ``value`` nests lists/dicts deeper than ``limit`` (iteratively)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise TooDeepError()
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values() if isinstance(child, dict | list))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item if isinstance(child, dict | list))


#: A surrogate escape: a high one with the low one that may follow it, or a low one alone.
_SURROGATE_ESCAPE = re.compile(
    r"\\u[dD](?:[89abAB][0-9a-fA-F]{2}(?:\\u[dD][c-fC-F][0-9a-fA-F]{2})?|[c-fC-F][0-9a-fA-F]{2})")
_REPLACEMENT = "\\ufffd"


def replace_lone_surrogates(text: str) -> str:
    """``text`` with every lone surrogate escape replaced by ``\\ufffd`` (same length).

    For whole documents: one regex scan for the literal ``\\u`` prefix, and ``text`` itself back
    when nothing matched. (Two ``in`` scans cost 4x more on exports full of escaped quotes,
    where every backslash is a false start for the substring search.)
    """
    return _SURROGATE_ESCAPE.sub(_replace, text)


def loads(text: str) -> Any:
    """``json.loads`` that never returns a lone surrogate (see the module docstring).

    For short values decoded one by one: the ``in`` test costs a third of an empty ``sub``.
    """
    if "\\ud" in text or "\\uD" in text:
        text = _SURROGATE_ESCAPE.sub(_replace, text)
    return parse(text)


def _replace(match: re.Match[str]) -> str:
    found = match.group()
    # An escape is real only after an even run of backslashes: "\\ud800" is the text "\ud800".
    start = match.start()
    run = 0
    while start - run > 0 and match.string[start - run - 1] == "\\":
        run += 1
    if run % 2:  # not an escape; but a low escape it swallowed is real (it follows a hex digit)
        return found[:6] + (_REPLACEMENT if len(found) == 12 else "")
    return found if len(found) == 12 else _REPLACEMENT
