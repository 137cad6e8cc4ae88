"""A trace's request and response when its root span carries none: the user's words, found.

Agents instrumented with OpenAI Agents, CrewAI or Koog (and any agent whose user message sits only
in the first model call's ``gen_ai.input.messages``) export a root span with no input, so the trace
had no request: search previews were empty and dataset records read ``{"request": null}``. The
user's message is still in the trace, in a model call's input; the answer in the last model
call's output. This module finds them, as a pure function over the trace's spans, so it gives the
same answer whichever way the trace row is derived (one reader's batch, or all stored spans).

The request is the text of the first ``user`` message of the earliest span whose input holds one
(GenAI ``gen_ai.input.messages`` parts, OpenInference ``llm.input_messages``, Langfuse generation
input, ``{"messages": [...]}`` envelopes); the response is the text of the last assistant message
(or plain output) of the latest model span that has output. ``request_source`` /
``response_source`` say where each came from: ``root`` (the root span), ``trace`` (stated by the
source at trace level), ``user_message`` / ``model_output`` (found here).
"""

from __future__ import annotations

import json
from typing import Any, Iterable, NamedTuple

from tools.models import MODEL_SPAN_TYPES, Span

__all__ = ["FoundText", "first_user_message", "last_model_output", "request_and_response"]

_TEXT_PART_TYPES = frozenset({"text", "input_text", "output_text"})


class FoundText(NamedTuple):
    """The request and response text (None where nothing was found) and where each came from."""

    request: str | None
    response: str | None
    request_source: str | None
    response_source: str | None


def request_and_response(spans: list[Span], root: Span | None) -> FoundText:
    """The root's input/output where it has them, else the first user message / last model output."""
    by_start = sorted(spans, key=lambda span: span.start_time_ns)
    request = root.inputs if root is not None and _present(root.inputs) else None
    response = root.outputs if root is not None and _present(root.outputs) else None
    request_source = "root" if request is not None else None
    response_source = "root" if response is not None else None
    if request is None and (found := first_user_message(by_start)) is not None:
        request, request_source = found, "user_message"
    if response is None and (found := last_model_output(by_start)) is not None:
        response, response_source = found, "model_output"
    return FoundText(request, response, request_source, response_source)


def first_user_message(spans: Iterable[Span]) -> str | None:
    """The text of the first user message in the earliest span input that has one."""
    for span in spans:
        value = _decoded(span.inputs)
        if value is None:
            continue
        text = _message_text(value, role="user", last=False)
        if text:
            return text
    return None


def last_model_output(spans: list[Span]) -> str | None:
    """The text of the latest model span's output (its last assistant message, or plain text)."""
    for span in reversed(spans):
        if span.span_type not in MODEL_SPAN_TYPES or not _present(span.outputs):
            continue
        value = _decoded(span.outputs)
        text = _message_text(value, role="assistant", last=True) if value is not None else None
        if text:
            return text
        if isinstance(value, str) and value.strip():
            return value
    return None


def _present(text: str | None) -> bool:
    return text is not None and text.strip() not in ("", "null", "{}", "[]", '""')


def _decoded(raw: str | None) -> Any:
    if not _present(raw):
        return None
    assert raw is not None
    if raw.lstrip()[:1] in ("{", "[", '"'):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _message_text(value: Any, *, role: str, last: bool) -> str | None:
    """The text of the first (or last) message with ``role`` in a messages list or envelope."""
    messages = _messages(value)
    if messages is None:
        return None
    chosen = [m for m in messages if str(m.get("role", "")).lower() == role
              or (role == "assistant" and str(m.get("role", "")).lower() in ("model", "ai"))]
    for message in (reversed(chosen) if last else chosen):
        text = _content_text(message.get("content", message.get("parts")))
        if text:
            return text
    return None


def _messages(value: Any) -> list[dict] | None:
    """A list of ``{role, content|parts}`` dicts out of the shapes the conventions use."""
    if isinstance(value, dict):
        for key in ("messages", "input_messages", "output_messages", "input", "output", "choices"):
            if isinstance(value.get(key), list):
                return _messages(value[key])
        if "role" in value:
            return [value]
        if isinstance(value.get("message"), dict):  # one OpenAI choice or OpenInference entry
            return _messages(value["message"])
        return None
    if not isinstance(value, list):
        return None
    out = []
    for item in value:
        if isinstance(item, dict) and isinstance(item.get("message"), dict):
            item = item["message"]  # OpenInference: [{"message": {"role": …, "content": …}}]
        if isinstance(item, dict) and "role" in item:
            out.append(item)
    return out or None


def _content_text(content: Any) -> str | None:
    """Plain text of a message's content: a string, or the text parts of a parts list."""
    if isinstance(content, str):
        return content.strip() or None
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and (part.get("type") in _TEXT_PART_TYPES or "type" not in part):
                text = part.get("content", part.get("text"))
                if isinstance(text, str):
                    texts.append(text)
        joined = "\n".join(text for text in texts if text.strip())
        return joined or None
    return None


def fill_request(fields: dict[str, Any], spans: list[Span]) -> None:
    """Fill a trace's missing ``request`` / ``response`` in ``fields`` (build_trace's keyword
    arguments) from its spans, and record in its metadata where each found value came from.

    Values the source stated (trace-level, or the root's) are kept as they are and get no source
    key, so only a found value is marked (``metadata.request_source = 'user_message'``).
    """
    if _present(fields.get("request")) and _present(fields.get("response")):
        return
    found = request_and_response(spans, None)
    marks: dict[str, str] = {}
    if not _present(fields.get("request")) and found.request is not None:
        fields["request"], marks["request_source"] = found.request, str(found.request_source)
    if not _present(fields.get("response")) and found.response is not None:
        fields["response"], marks["response_source"] = found.response, str(found.response_source)
    if marks:
        fields["metadata"] = {**(fields.get("metadata") or {}), **marks}
