"""A trace as a reviewer sees it on ``/label``: readable, bounded and PII-redacted.

Built from ``get_trace`` (so the same character budget and cut markers apply), then every text a
person will read — request, response, span inputs/outputs, error messages — goes through one
``Redactor``, so ``<EMAIL_1>`` is the same address everywhere on the page. A lead may reveal a
single field (``request``, ``response`` or ``<span_id>.inputs|outputs|status_message``); the caller
logs that before asking for it, and only that field comes back in clear.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, Field

from tools.ports import TraceStore
from tools.previews import preview
from tools.privacy.redaction import Redactor
from tools.traces.view import GetTraceInput, get_trace

#: Text budget of one review page (characters, before HTML).
PAGE_CHARS = 40_000


class ReviewSpan(BaseModel):
    span_id: str
    depth: int
    name: str
    type: str
    status: str
    duration_ms: float
    tool_name: str | None
    model: str | None
    status_message: str | None
    inputs: str | None
    outputs: str | None


class ReviewTrace(BaseModel):
    trace_id: str
    time: str
    status: str
    duration_ms: int | None
    name: str | None
    model: str | None
    environment: str | None
    request_gist: str | None = Field(description="The user's words, for the heading.")
    response_gist: str | None
    request: str | None
    response: str | None
    spans: list[ReviewSpan]
    tool_calls: int
    errors: list[str] = Field(description="'span name: message' of every span that failed.")
    redacted: dict[str, int] = Field(description="Values replaced, by type (EMAIL, PHONE, …).")
    redacted_fields: list[str] = Field(description="Fields in which something was replaced (a lead may reveal them).")
    revealed: str | None = Field(description="The one field shown without redaction, if any.")
    truncated: bool


def _pretty(text: str | None) -> str | None:
    """JSON payloads indented for reading; anything else unchanged."""
    if text is None or text.lstrip()[:1] not in ("{", "["):
        return text
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def review_trace(store: TraceStore, trace_id: str, *, reveal: str | None = None) -> ReviewTrace:
    """``trace_id`` ready for a person: redacted everywhere except the ``reveal`` field."""
    raw = get_trace(store, GetTraceInput(trace_id=trace_id, max_chars=PAGE_CHARS))
    redactor = Redactor()

    changed: list[str] = []

    def shown(field: str, text: str | None) -> str | None:
        text = _pretty(text)
        if text is None:
            return None
        clean = redactor.text(text)
        if clean != text:
            changed.append(field)
        return text if field == reveal else clean

    head = raw.trace
    request, response = shown("request", head.request), shown("response", head.response)
    spans = [ReviewSpan(
        span_id=s.span_id, depth=s.depth, name=s.name, type=s.type, status=s.status, duration_ms=s.duration_ms,
        tool_name=s.tool_name, model=s.model, status_message=shown(f"{s.span_id}.status_message", s.status_message),
        inputs=shown(f"{s.span_id}.inputs", s.inputs), outputs=shown(f"{s.span_id}.outputs", s.outputs))
        for s in raw.spans]
    errors = [f"{s.name}: {s.status_message or 'failed'}" for s in spans if s.status == "ERROR"]
    return ReviewTrace(
        trace_id=head.trace_id, time=head.time, status=head.status, duration_ms=head.duration_ms, name=head.name,
        model=head.model, environment=head.environment,
        request_gist=redactor.text(preview(head.request, chars=300) or "") or None,
        response_gist=redactor.text(preview(head.response, chars=300, is_request=False) or "") or None,
        request=request, response=response, spans=spans,
        tool_calls=sum(1 for s in spans if s.type == "TOOL"), errors=errors,
        redacted=dict(sorted(redactor.counts.items())), redacted_fields=changed, revealed=reveal, truncated=raw.truncated)


def revealable(trace: ReviewTrace) -> list[str]:
    """The fields ``review_trace(reveal=...)`` would change: those where redaction replaced something."""
    return list(trace.redacted_fields)
