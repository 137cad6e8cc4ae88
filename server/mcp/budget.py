"""The hard budget on every tool result, applied in one place (``surface.TracesieveServer``).

Claude Code refuses tool results over 25,000 tokens and every host pays for each one in context,
so no legal call may return more, whatever its arguments. Tools already page and cut their own
output; this is the backstop that makes the promise unconditional:

1. ``compact``: nulls are left out (except ``next_*`` continuations, whose null says "this was the
   last page") and floats are rounded: three decimals from 1 up (milliseconds keep microseconds),
   six significant digits below (rates, p-values). Exact values stay in the store and ``query_sql``.
2. ``fit``: while the compact JSON is over budget, the largest list is cut to the items that fit
   (then, if one item alone is too big, the largest string), and a ``truncated`` note says what was
   cut and which call reads the rest.

Tokens are counted conservatively as characters / 2.5 (JSON full of ids and digits runs at about
2.5-3.5 characters a token with current tokenizers; prose at ~4), so 25,000 tokens is 62,500
characters of text and structured content together.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

TOKEN_BUDGET = 25_000
CHARS_PER_TOKEN = 2.5
#: The whole result (text + structured content), in characters.
BUDGET_CHARS = int(TOKEN_BUDGET * CHARS_PER_TOKEN)
SIGNIFICANT_DIGITS = 6
DECIMALS = 3
#: Room kept for the ``truncated`` note itself.
_NOTE_RESERVE = 600
_CUT_MARK = "…[cut to fit the result budget: {more} more chars]"
#: Continuation fields that no longer follow on from a cut list, and so are dropped with it.
_STALE_CONTINUATIONS = ("next_page_token", "next_offset", "next_span_offset")


def size(data: Any) -> int:
    """Characters of ``data`` as compact JSON (what a host hands the model)."""
    return len(json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str))


def _round(x: float) -> float:
    if not math.isfinite(x) or x == 0:
        return x
    if abs(x) >= 1:
        return round(x, DECIMALS)
    return round(x, SIGNIFICANT_DIGITS - int(math.floor(math.log10(abs(x)))) - 1)


def compact(data: Any) -> Any:
    """``data`` without null object members (but for ``next_*``), floats rounded for a reader."""
    if isinstance(data, dict):
        return {k: compact(v) for k, v in data.items() if v is not None or k.startswith("next_")}
    if isinstance(data, list):
        return [compact(v) for v in data]
    if isinstance(data, float):
        return _round(data)
    return data


@dataclass
class Cut:
    path: str
    kept: int
    total: int
    unit: str  # "items" or "chars"


def _containers(data: Any, path: str = "") -> list[tuple[str, Any, Any, int]]:
    """Every list and string in ``data`` as (path, parent, key, serialized size)."""
    found: list[tuple[str, Any, Any, int]] = []
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        where = f"{path}.{key}" if isinstance(data, dict) and path else str(key) if isinstance(data, dict) \
            else f"{path}[{key}]"
        if isinstance(value, list) and len(value) > 1 or isinstance(value, str) and len(value) > 200:
            found.append((where, data, key, size(value)))
        if isinstance(value, (dict, list)):
            found.extend(_containers(value, where))
    return found


def _cut_list(items: list[Any], excess: int) -> int:
    """How many leading items to keep so the list shrinks by at least ``excess`` characters."""
    sizes = [size(v) + 1 for v in items]
    room = sum(sizes) - excess
    kept, used = 0, 0
    for s in sizes:
        if used + s > room:
            break
        kept, used = kept + 1, used + s
    return max(kept, 1)


def fit(data: dict[str, Any], limit: int) -> tuple[dict[str, Any], list[Cut]]:
    """Cut ``data`` (compact, mutated in place) until its JSON is at most ``limit`` characters."""
    cuts: list[Cut] = []
    for _ in range(200):   # each round removes the largest excess; a handful of rounds is typical
        excess = size(data) - (limit - _NOTE_RESERVE)
        if excess <= 0:
            break
        candidates = _containers(data)
        lists = [c for c in candidates if isinstance(c[1][c[2]], list)]
        pool = lists or [c for c in candidates if isinstance(c[1][c[2]], str)]
        if not pool:
            break
        path, parent, key, _ = max(pool, key=lambda c: c[3])
        value = parent[key]
        if isinstance(value, list):   # keeps at least one item; if that alone is too big, its strings go next
            kept = _cut_list(value, excess)
            parent[key] = value[:kept]
            cuts.append(Cut(path, kept, len(value), "items"))
            continue
        keep = max(100, len(value) - excess - len(_CUT_MARK) - 12)
        parent[key] = value[:keep] + _CUT_MARK.format(more=len(value) - keep)
        cuts.append(Cut(path, keep, len(value), "chars"))
    return data, cuts


def next_call(tool: str, arguments: dict[str, Any], data: dict[str, Any], cuts: list[Cut],
              parameters: list[str]) -> str:
    """The note a cut result carries: what was cut, and the call that reads the rest."""
    what = "; ".join(f"{c.path}: kept {c.kept} of {c.total} {c.unit}" for c in cuts)
    top_lists = [c for c in cuts if c.unit == "items" and "." not in c.path and "[" not in c.path]
    stale = [k for k in _STALE_CONTINUATIONS if k in data]
    hint = ""
    if top_lists and "offset" in parameters and "next_offset" in data:
        data["next_offset"] = int(arguments.get("offset") or 0) + top_lists[0].kept
        hint = f"call {tool} again with offset={data['next_offset']} for the rest"
    elif top_lists and "limit" in parameters:
        for key in stale:
            del data[key]
        args = ", ".join(f"{k}={v!r}" for k, v in {**arguments, "limit": top_lists[0].kept}.items())
        hint = f"call {tool}({args}) to read in pages that fit"
    elif "max_chars" in parameters:
        hint = f"call {tool} again with a smaller max_chars, or read one part at a time"
    else:
        hint = f"narrow the call to {tool} (fewer ids, a tighter filter)"
    if len(hint) > 400:
        hint = hint[:400] + "…)"
    return f"Cut to fit the {TOKEN_BUDGET:,}-token result budget ({what}); {hint}."
