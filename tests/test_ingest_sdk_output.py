"""Traces produced here by the real OpenTelemetry SDK with GenAI attributes, encoded exactly as
the OTLP exporters encode them (protobuf, ``MessageToJson``, and JSON lines), then ingested."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToJson
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from server.ingestion import read_path
from tools.errors import IngestError
from tools.models import Trace

MESSAGES = json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}])


@pytest.fixture(scope="module")
def sdk_spans() -> list[ReadableSpan]:
    """Two traces: an agent run (two chats, one failing tool) and a lone text completion."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "weather-agent",
                                                        "deployment.environment.name": "prod"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.genai", "1.0.0")
    with tracer.start_as_current_span("invoke_agent weather", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "weather",
            "gen_ai.conversation.id": "conv-1", "gen_ai.input.messages": MESSAGES,
            "gen_ai.usage.input_tokens": 250, "gen_ai.usage.output_tokens": 60}):  # a roll-up
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.usage.input_tokens": 100,
                "gen_ai.usage.output_tokens": 20, "gen_ai.response.finish_reasons": ("tool_calls",)}):
            pass
        with tracer.start_as_current_span("execute_tool get_weather", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather",
                "gen_ai.tool.call.arguments": '{"city": "Paris"}'}) as tool:
            tool.record_exception(TimeoutError("weather API timed out"))
            tool.set_attribute("error.type", "TimeoutError")
            tool.set_status(Status(StatusCode.ERROR, "timeout"))
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                "gen_ai.usage.prompt_tokens": 150, "gen_ai.usage.completion_tokens": 40}):  # deprecated names
            pass
    with tracer.start_as_current_span("text_completion llama", kind=SpanKind.CLIENT, attributes={
            "gen_ai.operation.name": "text_completion", "gen_ai.request.model": "llama-3-8b",
            "gen_ai.prompt": "Say hi", "gen_ai.completion": "hi"}) as lone:
        lone.set_status(Status(StatusCode.OK))
    provider.shutdown()
    return list(exporter.get_finished_spans())


@pytest.fixture(scope="module")
def exports(sdk_spans: list[ReadableSpan], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("otel")
    request = encode_spans(sdk_spans)
    paths = {"protobuf": folder / "export.pb", "json": folder / "export.json", "jsonl": folder / "export.jsonl"}
    paths["protobuf"].write_bytes(request.SerializeToString())
    paths["json"].write_text(MessageToJson(request))
    # the Collector's file exporter: one request per line, a trace may span several lines
    lines = [MessageToJson(encode_spans(sdk_spans[i:i + 2]), indent=None) for i in range(0, len(sdk_spans), 2)]
    paths["jsonl"].write_text("\n".join(lines) + "\n")
    return paths


def read(path: Path) -> dict[str, Trace]:
    results = list(read_path(path))
    assert [r for r in results if isinstance(r, IngestError)] == []
    return {trace.trace_id: trace for trace in results}


@pytest.mark.parametrize("kind", ["protobuf", "json", "jsonl"])
def test_sdk_output_maps_types_tokens_and_status(kind: str, exports: dict[str, Path],
                                                 sdk_spans: list[ReadableSpan]) -> None:
    traces = read(exports[kind])
    agent_root = next(s for s in sdk_spans if s.name == "invoke_agent weather")
    agent_id = f"{agent_root.context.trace_id:032x}"
    assert len(traces) == 2 and agent_id in traces
    trace = traces[agent_id]
    assert trace.source == "otlp" and len(trace.spans) == 4
    by_name = {}
    for span in trace.spans:
        by_name.setdefault(span.name, []).append(span)
    assert [s.span_type for s in by_name["chat gpt-4o"]] == ["LLM", "LLM"]
    assert by_name["invoke_agent weather"][0].span_type == "AGENT"
    (tool,) = by_name["execute_tool get_weather"]
    assert (tool.span_type, tool.tool_name) == ("TOOL", "get_weather")
    assert (tool.status, tool.status_message) == ("ERROR", "timeout")
    assert json.loads(tool.inputs) == {"city": "Paris"}
    assert tool.events[0]["name"] == "exception"
    assert tool.events[0]["attributes"]["exception.message"] == "weather API timed out"
    assert by_name["chat gpt-4o"][0].attributes["otel.span.kind"] == "CLIENT"
    assert by_name["chat gpt-4o"][0].attributes["gen_ai.response.finish_reasons"] == ["tool_calls"]
    # roll-up on the agent span is ignored; current and deprecated token names both count
    assert (trace.input_tokens, trace.output_tokens) == (100 + 150, 20 + 40)
    assert trace.model == "gpt-4o-2024-08-06"
    assert trace.status == "OK" and trace.name == "invoke_agent weather"  # the root did not fail
    assert (trace.session_id, trace.environment) == ("conv-1", "prod")
    assert trace.metadata["resource"]["service.name"] == "weather-agent"
    assert trace.timestamp_ms == agent_root.start_time // 1_000_000
    assert trace.execution_time_ms == (agent_root.end_time - agent_root.start_time) // 1_000_000
    assert json.loads(trace.request)[0]["parts"][0]["content"] == "Weather in Paris?"
    root = by_name["invoke_agent weather"][0]
    assert root.span_id == f"{agent_root.context.span_id:016x}" and root.parent_span_id is None
    assert {s.parent_span_id for s in trace.spans if s is not root} == {root.span_id}


def test_a_lone_text_completion_is_an_llm_trace(exports: dict[str, Path]) -> None:
    (lone,) = [t for t in read(exports["json"]).values() if t.name == "text_completion llama"]
    (span,) = lone.spans
    assert (span.span_type, span.status, span.model) == ("LLM", "OK", "llama-3-8b")
    assert (lone.request, lone.response) == ("Say hi", "hi")


def test_every_encoding_of_the_same_spans_gives_the_same_traces(exports: dict[str, Path]) -> None:
    protobuf, as_json, lines = (read(exports[k]) for k in ("protobuf", "json", "jsonl"))
    assert protobuf.keys() == as_json.keys() == lines.keys()
    for trace_id, trace in protobuf.items():
        def canonical(t: Trace) -> dict:
            dumped = t.model_dump(exclude={"source_id"})
            dumped["spans"] = sorted(dumped["spans"], key=lambda s: s["span_id"])
            return dumped
        assert canonical(as_json[trace_id]) == canonical(trace) == canonical(lines[trace_id])
