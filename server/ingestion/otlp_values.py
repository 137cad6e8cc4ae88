"""OTLP ``AnyValue`` / ``KeyValue`` lists (JSON or ``MessageToDict`` form) -> plain Python values.

The wire format of OTLP attributes, decoded before ``attributes.map_attributes`` reads them.
Decoding recurses once per nested array/kvlist, so it stops at ``MAX_ANY_DEPTH`` with a
``ValueError`` the readers report for that envelope or trace (protobuf input is not bounded by
``json_text.MAX_DEPTH``).
"""

from __future__ import annotations

from typing import Any

from server.ingestion.attributes import as_int

__all__ = ["MAX_ANY_DEPTH", "decode_any_value", "decode_key_values"]

#: Nested arrayValue/kvlistValue levels accepted; real attributes nest a handful.
MAX_ANY_DEPTH = 40


def decode_any_value(value: Any, depth: int = 0) -> Any:
    """Decode one OTLP ``AnyValue`` (JSON or ``MessageToDict`` form) into a plain Python value.

    Lenient on purpose: 64-bit ints come as strings, and a value that is not an AnyValue at all
    (some exporters write plain JSON scalars) is returned unchanged.
    """
    if not isinstance(value, dict):
        return value
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return as_int(value["intValue"])
    if "doubleValue" in value:
        try:
            return float(value["doubleValue"])
        except (TypeError, ValueError):
            return value["doubleValue"]
    if "bytesValue" in value:
        return value["bytesValue"]  # base64 text: JSON-safe and lossless
    if depth >= MAX_ANY_DEPTH and ("arrayValue" in value or "kvlistValue" in value):
        raise ValueError(f"an attribute value (AnyValue) nested over {MAX_ANY_DEPTH} levels deep; real "
                         "attributes nest a few, so it is likely corrupt: fix or drop that attribute")
    if "arrayValue" in value:
        return [decode_any_value(item, depth + 1) for item in (value["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in value:
        return decode_key_values((value["kvlistValue"] or {}).get("values", []), depth + 1)
    return None if not value else value


def decode_key_values(pairs: Any, depth: int = 0) -> dict[str, Any]:
    """``[{key, value: AnyValue}]`` -> ``{key: value}``; a dict is taken as already decoded."""
    if isinstance(pairs, dict):
        return dict(pairs)
    out: dict[str, Any] = {}
    for pair in pairs or []:
        if isinstance(pair, dict) and "key" in pair:
            key, value = pair["key"], pair.get("value")
            # inlined common case: most attributes are strings
            value = value["stringValue"] if type(value) is dict and "stringValue" in value else decode_any_value(value, depth)
            out[key if type(key) is str else str(key)] = value
    return out
