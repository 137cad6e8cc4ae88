"""Attribute and metadata values as the JSON text the store keeps (one encoder for every write)."""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["row_json"]


def row_json(value: Any) -> str:
    """Compact JSON, byte-for-byte what ``json.dumps(ensure_ascii=False, separators=(",", ":"),
    default=str)`` writes (stored rows must not depend on the encoder). orjson is several times
    faster and escapes strings identically, but formats floats differently, refuses ints beyond
    64 bits and non-str keys, and renders some types (datetime, enum) its own way; so it only
    gets values made of plain str/int/bool/None, dicts and lists, and the stdlib does the rest."""
    if _plain(value):
        try:
            return orjson.dumps(value).decode()
        except TypeError:  # an int beyond 64 bits, a non-str key, nesting deeper than orjson allows
            pass
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


_SCALARS = frozenset({str, int, bool, type(None)})


def _plain(value: Any) -> bool:
    """Only str/int/bool/None leaves under exact dicts and lists (no floats, no subclasses)."""
    kind = type(value)
    if kind is dict:
        values = value.values()
    elif kind is list:
        values = value
    else:
        return kind in _SCALARS
    return set(map(type, values)) <= _SCALARS or all(_plain(item) for item in values)
