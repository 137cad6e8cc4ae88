"""The user's words and the answer, found in a trace's spans when its root states neither; and
previews that show words, not message envelopes."""

from __future__ import annotations

import json

import pytest

from server.ingestion.assemble import build_trace, make_span
from server.ingestion.request_text import first_user_message, request_and_response
from tools.models import Span
from tools.previews import preview


def _span(span_id: str, parent: str | None, start: int, **attributes: object) -> Span:
    return make_span(span_id=span_id, parent_span_id=parent, name=span_id, start=start, end=start + 10,
                     status="UNSET", status_message=None, attributes=dict(attributes), events=[])


OPENINFERENCE = {"openinference.span.kind": "LLM", "llm.model_name": "gpt-4o",
                 "llm.input_messages.0.message.role": "system", "llm.input_messages.0.message.content": "Be brief.",
                 "llm.input_messages.1.message.role": "user", "llm.input_messages.1.message.content": "Cancel my order",
                 "llm.output_messages.0.message.role": "assistant",
                 "llm.output_messages.0.message.content": "Order 7 is cancelled."}
RESPONSES_API = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4.1",
                 "output.value": json.dumps({"object": "response", "output": [
                     {"type": "message", "role": "assistant",
                      "content": [{"type": "output_text", "text": "It is sunny in Tokyo."}]}]})}


def test_openinference_flattened_messages_give_request_and_response() -> None:
    root = _span("root", None, 0, **{"openinference.span.kind": "AGENT"})
    trace = build_trace("a" * 32, [root, _span("llm", "root", 1, **OPENINFERENCE)], source="otlp")
    assert (trace.request, trace.response) == ("Cancel my order", "Order 7 is cancelled.")
    assert trace.metadata == {"request_source": "user_message", "response_source": "model_output"}


def test_the_latest_model_output_is_the_answer_and_tool_turns_are_passed_over() -> None:
    first = _span("first", "root", 1, **{**OPENINFERENCE, "llm.output_messages.0.message.content": "Checking…"})
    spans = [_span("root", None, 0), first, _span("tool", "root", 2, **{"gen_ai.operation.name": "execute_tool",
                                                                     "gen_ai.tool.call.result": "ok"}),
             _span("last", "root", 3, **RESPONSES_API)]
    found = request_and_response(spans, spans[0])
    assert found == ("Cancel my order", "It is sunny in Tokyo.", "user_message", "model_output")


def test_a_root_that_states_its_input_keeps_it_unmarked() -> None:
    root = _span("root", None, 0, **{"input.value": "What is MLflow?", "output.value": "A platform."})
    trace = build_trace("b" * 32, [root, _span("llm", "root", 1, **OPENINFERENCE)], source="otlp")
    assert (trace.request, trace.response, trace.metadata) == ("What is MLflow?", "A platform.", {})


def test_no_user_message_anywhere_leaves_the_request_empty() -> None:
    spans = [_span("root", None, 0), _span("tool", "root", 1, **{"gen_ai.operation.name": "execute_tool"})]
    assert first_user_message(spans) is None
    assert build_trace("c" * 32, spans, source="otlp").request is None


@pytest.mark.parametrize(("raw", "is_request", "words"), [
    (json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Find me a flight…"}]}]), True,
     "Find me a flight…"),
    (json.dumps([{"role": "assistant", "parts": [{"type": "tool_call", "name": "search_flights", "arguments": {}}]}]),
     False, "[calls search_flights]"),
    ('{"messages": [{"role": "user", "content": "Where is my parcel \\"A-17\\"? It was due on', True,
     'Where is my parcel "A-17"? It was due on'),  # a head cut off mid-document, as search rows hold
])
def test_previews_show_words_not_envelopes(raw: str, is_request: bool, words: str) -> None:
    assert preview(raw, is_request=is_request) == words
