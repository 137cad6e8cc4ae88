"""Per-span dumps made from spans the real OpenTelemetry SDK recorded, in every shape users have.

The OTel Python files are the SDK's own output (``ConsoleSpanExporter``, ``ReadableSpan.to_json()``);
the JS and Phoenix files are those shapes written from the same SDK spans (no JS runtime or Phoenix
server here), so every reader must give the same traces, spans, links, times and tokens.
"""

from __future__ import annotations

import gzip
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, format_span_id, format_trace_id

from server.ingestion import read_path
from tools.errors import IngestError
from tools.models import Trace
from tools.previews import preview

QUESTION = "Find me a flight to Lisbon on Friday"
ANSWER = "Flight TP 1353 leaves Friday at 09:40."


def _messages(role: str, *parts: dict) -> str:
    return json.dumps([{"role": role, "parts": list(parts)}])


@pytest.fixture(scope="module")
def sdk_spans() -> list[ReadableSpan]:
    """Two traces: a GenAI agent whose root has no input (two chats, one failing tool), and a
    lone OpenInference LLM call."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "travel-agent",
                                                        "deployment.environment.name": "prod"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.span_dumps", "1.0.0")
    with tracer.start_as_current_span("invoke_agent travel", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "travel"}):
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                "gen_ai.input.messages": _messages("user", {"type": "text", "content": QUESTION}),
                "gen_ai.output.messages": _messages("assistant", {"type": "tool_call", "name": "search_flights",
                                                                  "arguments": {"to": "LIS"}}),
                "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 20}):
            pass
        with tracer.start_as_current_span("execute_tool search_flights", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search_flights"}) as tool:
            tool.add_event("exception", {"exception.message": "flight API timed out"})
            tool.set_status(Status(StatusCode.ERROR, "timeout"))
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                "gen_ai.output.messages": _messages("assistant", {"type": "text", "content": ANSWER}),
                "gen_ai.usage.input_tokens": 150, "gen_ai.usage.output_tokens": 40}):
            pass
    with tracer.start_as_current_span("llm", kind=SpanKind.CLIENT, attributes={
            "openinference.span.kind": "LLM", "llm.model_name": "llama-3-8b", "input.value": "Say hi",
            "output.value": "hi", "llm.token_count.prompt": 3, "llm.token_count.completion": 1}) as lone:
        lone.set_status(Status(StatusCode.OK))
    provider.shutdown()
    return list(exporter.get_finished_spans())


def _hrtime(ns: int) -> list[int]:
    return [ns // 1_000_000_000, ns % 1_000_000_000]


def _js(span: ReadableSpan) -> dict:
    """``JSON.stringify`` of an OTel JS ReadableSpan holding the same span."""
    parent = {"traceId": format_trace_id(span.context.trace_id), "spanId": format_span_id(span.parent.span_id),
              "traceFlags": 1} if span.parent else None
    return {"name": span.name, "kind": span.kind.value,
            "spanContext": {"traceId": format_trace_id(span.context.trace_id),
                            "spanId": format_span_id(span.context.span_id), "traceFlags": 1},
            "parentSpanContext": parent, "startTime": _hrtime(span.start_time), "endTime": _hrtime(span.end_time),
            "status": {"code": span.status.status_code.value, **({"message": span.status.description}
                                                                  if span.status.description else {})},
            "attributes": dict(span.attributes),
            "events": [{"name": e.name, "time": _hrtime(e.timestamp), "attributes": dict(e.attributes)}
                       for e in span.events],
            "resource": {"attributes": dict(span.resource.attributes)}, "duration": [0, 0], "ended": True}


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat()


def _phoenix(span: ReadableSpan) -> dict:
    """A Phoenix REST span (``/v1/projects/{id}/spans``) for the same span."""
    return {"name": span.name, "context": {"trace_id": format_trace_id(span.context.trace_id),
                                           "span_id": format_span_id(span.context.span_id)},
            "parent_id": format_span_id(span.parent.span_id) if span.parent else None,
            "span_kind": span.attributes.get("openinference.span.kind", "UNKNOWN"),
            "start_time": _iso(span.start_time), "end_time": _iso(span.end_time),
            "status_code": span.status.status_code.name, "status_message": span.status.description or "",
            "attributes": dict(span.attributes),
            "events": [{"name": e.name, "timestamp": _iso(e.timestamp), "attributes": dict(e.attributes)}
                       for e in span.events]}


def _int_ids(dump: dict) -> dict:
    """A to_json() dump with integer ids, as ``json.dumps`` of the span context writes them."""
    context = dump["context"]
    return {**dump, "context": {**context, "trace_id": int(context["trace_id"], 16),
                                "span_id": int(context["span_id"], 16)},
            "parent_id": int(dump["parent_id"], 16) if dump["parent_id"] else None}


@pytest.fixture(scope="module")
def dumps(sdk_spans: list[ReadableSpan], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("dumps")
    console = io.StringIO()
    ConsoleSpanExporter(out=console).export(sdk_spans)  # the SDK's own concatenated pretty JSON
    objects = [json.loads(span.to_json()) for span in sdk_spans]
    files = {
        "console": ("console.log", console.getvalue()),
        "array": ("spans.json", json.dumps(objects, indent=2)),
        "spans_int_ids": ("spans_int.json", json.dumps({"spans": [_int_ids(o) for o in objects]})),
        "js": ("js_spans.json", json.dumps([_js(span) for span in sdk_spans])),
        "phoenix": ("phoenix.jsonl", "\n".join(json.dumps(_phoenix(span)) for span in sdk_spans) + "\n"),
    }
    paths = {}
    for kind, (name, text) in files.items():
        paths[kind] = folder / name
        paths[kind].write_text(text)
    paths["console_gz"] = folder / "console.log.gz"
    paths["console_gz"].write_bytes(gzip.compress(console.getvalue().encode()))
    return paths


def _read(path: Path) -> dict[str, Trace]:
    results = list(read_path(path))
    assert [str(r) for r in results if isinstance(r, IngestError)] == []
    return {trace.trace_id: trace for trace in results}


#: How precisely each shape writes times: the Python and Phoenix ISO strings keep (rounded) microseconds.
PRECISION_NS = {"console": 1000, "array": 1000, "spans_int_ids": 1000, "js": 1, "phoenix": 1000, "console_gz": 1000}
SOURCES = {"console": "otel-python", "array": "otel-python", "spans_int_ids": "otel-python", "js": "otel-js",
           "phoenix": "phoenix", "console_gz": "otel-python"}


@pytest.mark.parametrize("kind", list(PRECISION_NS))
def test_every_dump_shape_loads_the_same_traces(kind: str, dumps: dict[str, Path],
                                                sdk_spans: list[ReadableSpan]) -> None:
    traces = _read(dumps[kind])
    agent_id = format_trace_id(sdk_spans[0].context.trace_id)
    lone_id = format_trace_id(sdk_spans[-1].context.trace_id)
    assert sorted(traces) == sorted([agent_id, lone_id])
    agent, lone = traces[agent_id], traces[lone_id]
    assert (len(agent.spans), len(lone.spans)) == (4, 1)
    assert agent.source == SOURCES[kind]

    by_id = {span.span_id: span for span in agent.spans}
    for sdk in sdk_spans[:4]:
        span = by_id[format_span_id(sdk.context.span_id)]
        expected_parent = format_span_id(sdk.parent.span_id) if sdk.parent else None
        assert span.parent_span_id == expected_parent
        step = PRECISION_NS[kind]  # the dump rounds to its precision
        assert abs(span.start_time_ns - sdk.start_time) < step and abs(span.end_time_ns - sdk.end_time) < step
    types = sorted((span.name, span.span_type) for span in agent.spans)
    assert types == [("chat gpt-4o", "LLM"), ("chat gpt-4o", "LLM"), ("execute_tool search_flights", "TOOL"),
                     ("invoke_agent travel", "AGENT")]
    tool = next(span for span in agent.spans if span.span_type == "TOOL")
    assert (tool.status, tool.status_message, tool.tool_name) == ("ERROR", "timeout", "search_flights")
    assert (agent.input_tokens, agent.output_tokens, agent.model) == (250, 60, "gpt-4o")
    # the root has no input: the request is the user's words from the first chat, the answer the last output
    assert (agent.request, agent.response) == (QUESTION, ANSWER)
    assert (agent.metadata["request_source"], agent.metadata["response_source"]) == ("user_message", "model_output")
    if kind != "phoenix":  # Phoenix span exports carry no resource
        assert agent.environment == "prod"

    (llm,) = lone.spans
    assert (llm.span_type, llm.model, llm.input_tokens, llm.output_tokens) == ("LLM", "llama-3-8b", 3, 1)
    assert (lone.request, lone.response, lone.status) == ("Say hi", "hi", "OK")
    assert "request_source" not in lone.metadata  # the root stated it


def test_phoenix_nested_attributes_are_flattened_like_openinference(tmp_path: Path) -> None:
    path = tmp_path / "phoenix.json"
    path.write_text(json.dumps({"data": [{
        "name": "ChatOpenAI", "context": {"trace_id": "AB" * 16, "span_id": "CD" * 8}, "parent_id": None,
        "span_kind": "LLM", "start_time": "2025-06-01T10:00:00.5+00:00", "end_time": "2025-06-01T10:00:02+00:00",
        "status_code": "ERROR", "status_message": "rate limited",
        "attributes": {"llm": {"model_name": "gpt-4o-mini", "token_count": {"prompt": 12, "completion": 5},
                               "input_messages": [{"message": {"role": "user", "content": "Plan my week"}}]}},
        "events": []}], "next_cursor": None}))
    (trace,) = _read(path).values()
    (span,) = trace.spans
    assert trace.trace_id == "ab" * 16 and span.span_id == "cd" * 8
    assert (span.span_type, span.model, span.input_tokens, span.output_tokens) == ("LLM", "gpt-4o-mini", 12, 5)
    assert (span.status, span.status_message) == ("ERROR", "rate limited")
    assert span.end_time_ns - span.start_time_ns == 1_500_000_000
    # the root states its input (the message list); previews show the words
    assert json.loads(trace.request) == [{"message": {"role": "user", "content": "Plan my week"}}]
    assert preview(trace.request) == "Plan my week" and "request_source" not in trace.metadata


def test_a_span_it_cannot_read_costs_only_that_span(tmp_path: Path, dumps: dict[str, Path]) -> None:
    objects = json.loads(dumps["array"].read_text())
    del objects[-1]["start_time"]  # the lone LLM span
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(objects))
    results = list(read_path(path))
    errors = [str(r) for r in results if isinstance(r, IngestError)]
    assert errors == [f"{path} (span 5): span 'llm' has no start_time; every span in the dump needs one; this span "
                      "was skipped, the rest of the file still loads."]
    assert [len(t.spans) for t in results if isinstance(t, Trace)] == [4]


def test_an_unknown_shape_names_the_closest_one_and_what_it_lacks(tmp_path: Path) -> None:
    path = tmp_path / "almost.json"
    path.write_text(json.dumps({"name": "x", "context": {"trace_id": "0x" + "1" * 32}, "kind": "SpanKind.CLIENT",
                                "attributes": {}}))
    (error,) = list(read_path(path))
    assert isinstance(error, IngestError)
    text = str(error)
    assert ("closest is otel-python (OpenTelemetry Python span dump (ConsoleSpanExporter / to_json)), but it has no "
            "span_id, parent_id, start_time, end_time, status.") in text
    for shape in ("otlp", "mlflow", "langfuse", "otel-python", "otel-js", "phoenix"):
        assert f"{shape} (" in text
    assert text.endswith("Fix the file, or pass the format explicitly with --format.")


def test_a_broken_gzip_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "export.json.gz"
    path.write_bytes(gzip.compress(b'{"resourceSpans": []}')[:12])
    (error,) = list(read_path(path))
    assert isinstance(error, IngestError) and "a gzip file that cannot be decompressed" in str(error)
