"""What get_trace needs from a store: one trace read by the piece, never loaded whole.

Text comes back as a prefix of at most ``head`` characters plus the field's full length, so the
view can cut fairly and say exactly how much is left, while the store reads only what is shown.
"""

from __future__ import annotations

from typing import Any, Protocol


class TraceReader(Protocol):
    def trace_outline(self, trace_id: str, head: int) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """``(header, skeleton)`` in one read, or None if there is no such trace. The header holds the
        trace's columns and tags, ``metadata`` as JSON text, ``request``/``response`` as prefixes with
        ``request_chars``/``response_chars``; the skeleton every span's ids, name, type, timing, status,
        model, tool and tokens (no text)."""
        ...

    def span_texts(self, trace_id: str, span_ids: list[str], head: int,
                   attributes: bool) -> dict[str, dict[str, Any]]:
        """By span id: ``inputs``/``outputs`` prefixes with ``*_chars`` lengths,
        ``inputs_is_request``/``outputs_is_response``, and (if asked) ``attributes`` as JSON text."""
        ...

    def field_text(self, trace_id: str, span_id: str | None, field: str, offset: int,
                   length: int) -> tuple[str, int] | None:
        """``(text[offset:offset+length], total chars)`` of one field; None if the span does not exist."""
        ...

    def similar_trace_ids(self, trace_id: str, limit: int = 3) -> list[str]: ...
