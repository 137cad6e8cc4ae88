"""OTLP ingestion: the canonical example, GenAI/OpenInference attribute maps, exporter quirks,
protobuf, and bad input that must not stop the good traces."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import pytest
from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from server.ingestion import read_path
from tests.conftest import FIXTURES  # the shared fixtures dir, wherever CI put it
from server.ingestion.assemble import normalise_id
from tools.errors import IngestError, InvalidInputError
from tools.models import Trace

GENAI = FIXTURES / "openinference-genai"
DATA = Path(__file__).parent / "data" / "ingest"


def traces_and_errors(path: Path, fmt: str = "auto") -> tuple[list[Trace], list[IngestError]]:
    results = list(read_path(path, fmt))  # type: ignore[arg-type]
    return ([r for r in results if isinstance(r, Trace)], [r for r in results if isinstance(r, IngestError)])


def only_trace(path: Path) -> Trace:
    traces, errors = traces_and_errors(path)
    assert errors == [] and len(traces) == 1
    return traces[0]


# --- the canonical OTLP example -------------------------------------------------------------------

def test_the_otlp_example_gets_lowercase_ids_and_nanosecond_times() -> None:
    trace = only_trace(FIXTURES / "otlp" / "trace.json")
    (span,) = trace.spans
    assert trace.trace_id == "5b8efff798038103d269b633813fc60c"
    assert trace.source_id == "5B8EFFF798038103D269B633813FC60C"
    assert trace.source == "otlp"
    assert (span.span_id, span.parent_span_id) == ("eee19b7ec3c1b174", "eee19b7ec3c1b173")
    assert (span.start_time_ns, span.end_time_ns) == (1544712660000000000, 1544712661000000000)
    assert (trace.timestamp_ms, trace.execution_time_ms) == (1544712660000, 1000)
    # its parent is not in the file: the trace is still in progress (its root may arrive later)
    assert trace.name is None and trace.status == "IN_PROGRESS"
    assert span.attributes["my.span.attr"] == "some value"
    assert span.attributes["otel.span.kind"] == "SERVER"  # kind 2
    assert span.attributes["otel.scope.name"] == "my.library"
    assert trace.metadata == {"resource": {"service.name": "my.service"}}
    assert span.span_type == "UNKNOWN" and span.status == "UNSET"


# --- bare attribute maps (OpenInference / GenAI fixtures) ---------------------------------------

@pytest.mark.parametrize("name, span_type", [
    ("otel_genai_client_span_tool_calls.json", "LLM"),
    ("otel_genai_deprecated_client_span_tool_calls.json", "LLM"),
    ("openinference_client_span_tool_calls.json", "LLM"),
    ("openinference_client_span_input_output_only.json", "LLM"),
])
def test_one_llm_call_maps_the_same_in_every_convention(name: str, span_type: str) -> None:
    trace = only_trace(GENAI / name)
    (span,) = trace.spans
    assert span.span_type == span_type
    assert (span.input_tokens, span.output_tokens) == (97, 52)
    assert (trace.input_tokens, trace.output_tokens) == (97, 52)
    assert span.model == trace.model == "gpt-4-0613"
    assert "Weather in Paris?" in span.inputs
    assert "rainy with a temperature of 57°F" in span.outputs
    assert trace.request == span.inputs and trace.response == span.outputs


def test_the_deprecated_genai_names_map_exactly_like_the_current_ones() -> None:
    current = only_trace(GENAI / "otel_genai_client_span_tool_calls.json").spans[0]
    deprecated = only_trace(GENAI / "otel_genai_deprecated_client_span_tool_calls.json").spans[0]
    for field in ("span_type", "model", "input_tokens", "output_tokens", "inputs"):
        assert getattr(deprecated, field) == getattr(current, field), field
    assert json.loads(current.inputs)[0]["parts"][0]["content"] == "Weather in Paris?"
    # the deprecated completion holds the OpenAI-style text, the current one the message parts
    assert json.loads(deprecated.outputs)["text"].startswith("The weather in Paris")


def test_a_genai_tool_execution_span_is_a_tool_with_its_name_and_io() -> None:
    trace = only_trace(GENAI / "otel_genai_tool_execution_span.json")
    (span,) = trace.spans
    assert span.span_type == "TOOL" and span.tool_name == "get_weather"
    assert json.loads(span.inputs) == {"city": "New York"}
    assert json.loads(span.outputs)["status"] == "success"
    assert span.name == "execute_tool get_weather"
    assert trace.input_tokens is None and trace.model is None  # tool spans carry no usage


def test_attribute_map_ids_come_from_content_and_time_from_mtime(tmp_path: Path) -> None:
    source = GENAI / "otel_genai_tool_execution_span.json"
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_bytes(source.read_bytes())
    second.write_bytes(source.read_bytes())
    a, b = only_trace(first), only_trace(second)
    assert a.trace_id == b.trace_id and len(a.trace_id) == 32
    assert a.spans[0].span_id == only_trace(first).spans[0].span_id  # stable on re-ingest
    assert a.spans[0].start_time_ns == first.stat().st_mtime_ns
    assert only_trace(GENAI / "otel_genai_client_span_tool_calls.json").trace_id != a.trace_id


def test_a_directory_reads_every_attribute_map_and_skips_the_license() -> None:
    traces, errors = traces_and_errors(GENAI)
    assert errors == [] and len(traces) == 5


# --- exporter quirks --------------------------------------------------------------------------

def test_base64_ids_string_enums_and_string_ints_are_normalised() -> None:
    trace = only_trace(DATA / "otlp_quirks.json")
    spans = {span.name: span for span in trace.spans}
    agent, chat, tool = spans["invoke_agent weather"], spans["chat gpt-4o"], spans["execute_tool get_weather"]
    assert trace.trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert trace.source_id == "CvdlGRbNQ92ESOshHIAxnA=="
    assert (agent.span_id, chat.parent_span_id) == ("b7ad6b7169203331", "b7ad6b7169203331")
    assert chat.span_id == "00f067aa0ba902b7" and tool.span_id == "1111111111111111"
    assert (agent.span_type, chat.span_type, tool.span_type) == ("AGENT", "LLM", "TOOL")
    assert agent.attributes["otel.span.kind"] == "INTERNAL" and chat.attributes["otel.span.kind"] == "CLIENT"
    assert agent.status == "ERROR" and agent.status_message == "tool failed"  # "STATUS_CODE_ERROR"
    assert chat.status == "OK"  # "STATUS_CODE_OK"
    assert tool.status == "ERROR" and tool.status_message == "weather API timed out"  # error.type + exception event
    assert chat.attributes["gen_ai.usage.input_tokens"] == 120  # intValue "120" -> 120
    assert chat.attributes["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert chat.attributes["llm.invocation"] == {"stream": False}
    assert chat.attributes["gen_ai.request.temperature"] == 0.2
    # trace roll-up: the agent's own 999 input tokens are a roll-up and are not summed
    assert (trace.input_tokens, trace.output_tokens) == (120, 30)
    assert trace.status == "ERROR" and trace.model == "gpt-4o"
    assert trace.session_id == "conv-42" and trace.environment == "staging"
    assert (trace.timestamp_ms, trace.execution_time_ms) == (1717000000000, 2500)
    assert json.loads(trace.request)[0]["parts"][0]["content"] == "Weather in Paris?"
    assert tool.tool_name == "get_weather" and json.loads(tool.inputs) == {"city": "Paris"}
    assert tool.events[0]["name"] == "exception"


def test_json_lines_group_one_trace_split_over_lines() -> None:
    traces, errors = traces_and_errors(DATA / "otlp_lines.jsonl")
    assert errors == []
    by_id = {trace.trace_id: trace for trace in traces}
    assert set(by_id) == {"a" * 32, "b" * 32}
    split = by_id["a" * 32]
    assert [span.name for span in sorted(split.spans, key=lambda s: s.start_time_ns)] == ["root", "llm"]
    assert split.name == "root" and split.request == "hello" and split.response == "world"
    assert (split.session_id, split.user_id) == ("sess-1", "user-1")
    assert (split.input_tokens, split.output_tokens, split.model) == (11, 7, "claude-3-5-sonnet")
    assert {span.span_type for span in split.spans} == {"CHAIN", "LLM"}


@pytest.mark.parametrize("value, expected", [
    ("5B8EFFF798038103D269B633813FC60C", "5b8efff798038103d269b633813fc60c"),
    ("W47/95gDgQPSabYzgT/GDA==", "5b8efff798038103d269b633813fc60c"),
    ("0x00f067aa0ba902b7", "00f067aa0ba902b7"),
    ("5b8efff7-9803-8103-d269-b633813fc60c", "5b8efff798038103d269b633813fc60c"),
    (255, "00000000000000ff"),
])
def test_ids_in_every_encoding_become_lowercase_hex(value: object, expected: str) -> None:
    assert normalise_id(value) == expected


# --- protobuf ---------------------------------------------------------------------------------

def _request_from_json(path: Path) -> ExportTraceServiceRequest:
    """The canonical example as a real protobuf message (the JSON's hex ids become bytes)."""
    doc = json.loads(path.read_text())
    for resource_spans in doc["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    return ParseDict(doc, ExportTraceServiceRequest())


@pytest.mark.parametrize("suffix", [".pb", ".bin"])
def test_a_protobuf_file_reads_like_its_json(tmp_path: Path, suffix: str) -> None:
    # ".bin" is not a protobuf suffix: the content sniff has to recognise it
    path = tmp_path / f"trace{suffix}"
    path.write_bytes(_request_from_json(FIXTURES / "otlp" / "trace.json").SerializeToString())
    from_pb = only_trace(path)
    from_json = only_trace(FIXTURES / "otlp" / "trace.json")
    assert from_pb.model_dump(exclude={"source_id"}) == from_json.model_dump(exclude={"source_id"})


def test_a_length_delimited_protobuf_stream_reads_every_message(tmp_path: Path) -> None:
    first = _request_from_json(FIXTURES / "otlp" / "trace.json")
    second = ExportTraceServiceRequest()
    second.CopyFrom(first)
    second.resource_spans[0].scope_spans[0].spans[0].trace_id = bytes.fromhex("11" * 16)
    path = tmp_path / "stream.binpb"
    path.write_bytes(b"".join(struct.pack(">I", len(m)) + m for m in
                              (first.SerializeToString(), second.SerializeToString())))
    traces, errors = traces_and_errors(path)
    assert errors == []
    assert {trace.trace_id for trace in traces} == {"5b8efff798038103d269b633813fc60c", "11" * 16}


def test_garbage_with_a_protobuf_suffix_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.pb"
    path.write_bytes(b"\x0a\xff\xff\xff\xff\x0f garbage")
    traces, errors = traces_and_errors(path)
    assert traces == [] and len(errors) == 1
    assert str(errors[0]).startswith(f"{path}: not an OTLP protobuf ExportTraceServiceRequest")


# --- bad input --------------------------------------------------------------------------------

def test_a_malformed_json_file_is_one_error_naming_the_file() -> None:
    traces, errors = traces_and_errors(DATA / "malformed.json")
    assert traces == []
    assert [str(e) for e in errors] == [
        f"{DATA / 'malformed.json'}: not valid JSON: Expecting value (line 3, column 1); "
        "fix the file or re-export it as one JSON document or JSON lines."]


def test_one_bad_json_line_is_reported_and_the_other_lines_still_load() -> None:
    traces, errors = traces_and_errors(DATA / "otlp_bad_line.jsonl")
    assert sorted(trace.name for trace in traces) == ["first", "third"]
    assert len(errors) == 1 and errors[0].location == "line 2"
    assert str(errors[0]).startswith(f"{DATA / 'otlp_bad_line.jsonl'} (line 2): not valid JSON")


def test_a_span_without_id_fails_its_whole_trace_only() -> None:
    traces, errors = traces_and_errors(DATA / "otlp_missing_span_id.json")
    assert [str(e) for e in errors] == [
        f"{DATA / 'otlp_missing_span_id.json'} (trace ABCDEF0123456789ABCDEF0123456789): "
        "span 'child without id' has no spanId; every OTLP span needs one."]
    # the other trace loads, and a span that ends before it starts is kept as written
    (trace,) = traces
    assert trace.trace_id == "fedcba9876543210fedcba9876543210"
    assert trace.spans[0].end_time_ns < trace.spans[0].start_time_ns and trace.execution_time_ms == 0


def test_a_json_file_of_another_shape_is_an_error_not_a_guess(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"name": "not a trace", "nested": {"x": 1}}')
    traces, errors = traces_and_errors(path)
    assert traces == [] and len(errors) == 1
    assert "could not tell the trace format" in str(errors[0]) and "pass the format explicitly" in str(errors[0])
    _, forced = traces_and_errors(path, "otlp")
    assert "not an OTLP trace export (no 'resourceSpans')" in str(forced[0])


def test_a_missing_path_raises_a_clear_error(tmp_path: Path) -> None:
    # raised by the call itself, before any iteration, so a caller fails fast
    with pytest.raises(InvalidInputError, match="No file or directory at '.*nope.json'. Check the path"):
        read_path(tmp_path / "nope.json")
    with pytest.raises(InvalidInputError, match="Unknown trace format 'zipkin'. Use one of: auto, otlp"):
        read_path(DATA, "zipkin")  # type: ignore[arg-type]
