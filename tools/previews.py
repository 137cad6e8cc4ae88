"""Short, human-meaningful previews of request/response payloads.

A raw request is usually a JSON envelope (``{"messages": [...]}``); an agent scanning search
results wants the user's words, not the envelope. These helpers dig out the text a person
would quote and cut it with an explicit marker.
"""

from __future__ import annotations

import json
import re
from typing import Any

_TEXT_KEYS = ("content", "text", "query", "question", "input", "prompt", "message", "answer", "output",
              "response", "result")


#: The first text value in JSON that does not parse (a head cut off mid-document, as search rows
#: and queue items carry): ``"content": "…"`` or ``"text": "…"``, the string read up to its end.
_TEXT_VALUE = re.compile(r'"(?:content|text|query|question|prompt)"\s*:\s*"((?:[^"\\]|\\.)*)("?)')


def _text_of(value: Any, *, prefer_last_user: bool) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("type") in ("tool_call", "function_call") and value.get("name"):
        return f"[calls {value['name']}]"  # a model turn that only calls a tool: say so, not its JSON
    if isinstance(value, list):
        messages = [m for m in value if isinstance(m, dict) and "role" in m]
        if messages:
            users = [m for m in messages if m.get("role") == "user"] if prefer_last_user else []
            chosen = (users or messages)[-1]
            return _text_of(chosen.get("content") or chosen.get("parts"), prefer_last_user=prefer_last_user)
        parts = [_text_of(v, prefer_last_user=prefer_last_user) for v in value]
        joined = " ".join(p for p in parts if p)
        return joined or None
    if isinstance(value, dict):
        for key in ("messages", "input_messages", "choices"):
            if key in value:
                found = _text_of(value[key], prefer_last_user=prefer_last_user)
                if found:
                    return found
        for key in _TEXT_KEYS:
            if key in value:
                found = _text_of(value[key], prefer_last_user=prefer_last_user)
                if found:
                    return found
    return None


def preview(raw: str | None, *, chars: int = 160, is_request: bool = True) -> str | None:
    """The readable gist of a payload, at most ``chars`` characters, ending in '…' when cut."""
    if raw is None:
        return None
    text: str | None = None
    stripped = raw.lstrip()
    if stripped[:1] in ("{", "[", '"'):
        try:
            text = _text_of(json.loads(raw), prefer_last_user=is_request)
        except ValueError:
            text = _text_in_broken_json(raw)
    text = " ".join((text if text is not None else raw).split())
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _text_in_broken_json(raw: str) -> str | None:
    """The first text value of a JSON document cut off mid-way (its closing quote may be gone)."""
    match = _TEXT_VALUE.search(raw)
    if match is None:
        return None
    body = match.group(1)
    try:
        return json.loads(f'"{body}"')
    except ValueError:  # cut inside an escape: drop the partial escape
        return json.loads(f'"{body.rsplit(chr(92), 1)[0]}"') if chr(92) in body else body


def cut(text: str, limit: int, *, hint: str) -> tuple[str, bool]:
    """``text`` cut to ``limit`` characters with a marker saying how much is left and how to get it."""
    if len(text) <= limit:
        return text, False
    return text[:limit] + f"…[truncated: {len(text) - limit} more chars; next: {hint}]", True
