"""Opaque page tokens for keyset pagination.

A token carries the last row's sort values and trace id (never an offset, so pages stay
stable while traces arrive), the clock reading of page 1 (so ``now() - 7d`` means the same
thing on every page), the match count of page 1 (so later pages need not count again), and a
fingerprint of the filter and order it belongs to.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from tools.errors import InvalidInputError


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def encode(*, query: str, now_ms: int, values: list[Any], trace_id: str, total: int | None = None,
           total_exact: bool = True) -> str:
    payload = json.dumps({"q": query, "n": now_ms, "v": values, "id": trace_id, "t": total, "te": total_exact},
                         default=str)
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode(token: str, *, query: str) -> dict[str, Any]:
    """The token's contents; an error that says to restart if it is damaged or from another search."""
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        ok = isinstance(data, dict) and {"q", "n", "v", "id"} <= data.keys()
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise InvalidInputError(
            "page_token is not one this server issued. Pass the `next_page_token` of the previous "
            "result unchanged, or omit page_token to start from page 1.")
    if data["q"] != query:
        raise InvalidInputError(
            "page_token belongs to a search with a different filter or order_by. Repeat the same "
            "filter and order_by with it, or omit page_token to start from page 1.")
    total = data.get("t")
    return {"now_ms": int(data["n"]), "values": data["v"], "trace_id": str(data["id"]),
            "total": total if isinstance(total, int) else None, "total_exact": data.get("te") is not False}
