"""POST /v1/traces with the real OpenTelemetry exporter, over real HTTP on 127.0.0.1.

The SDK's ``BatchSpanProcessor`` with the real ``opentelemetry-exporter-otlp-proto-http`` exporter
sending long traces in pieces is in ``tests/contract/test_receiver_contract.py`` (every engine).
Hand-made requests cover the rest of the specification: JSON with hex ids, gzip, a request sent
twice, partial success, 400/413/415/503.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import httpx
import pytest
from google.protobuf.json_format import MessageToJson
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from server.http.otlp_receiver import OtlpReceiver
from server.storage.duckdb.store import DuckDBTraceStore
from tests.factory import stored_rows
from tests.live_server import serving

T0 = 1_763_000_000_000_000_000


def agent_trace(provider: TracerProvider, turns: int, name: str = "invoke_agent support") -> None:
    """One trace: a root with ``turns`` chat + tool pairs (the root ends, and is exported, last)."""
    tracer = provider.get_tracer("tests.receiver")
    with tracer.start_as_current_span(name, attributes={"input.value": '{"q": "where is my order?"}'}):
        for turn in range(turns):
            with tracer.start_as_current_span("chat gpt-4o", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 10 + turn, "gen_ai.usage.output_tokens": 2}):
                pass
            with tracer.start_as_current_span("execute_tool lookup", attributes={
                    "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup"}):
                pass


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "live.duckdb"


def _request(spans: list[dict]) -> dict:
    return {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "svc"}}]}, "scopeSpans": [{"spans": spans}]}]}


def _span(trace_hex: str, span_hex: str, parent: str | None, start: int | None, name: str = "op") -> dict:
    span: dict = {"traceId": trace_hex, "spanId": span_hex, "name": name, "endTimeUnixNano": str(T0 + 5_000_000)}
    if start is not None:
        span["startTimeUnixNano"] = str(start)
    if parent:
        span["parentSpanId"] = parent
    return span


def test_json_with_hex_ids_gzip_and_a_request_sent_twice(db: Path) -> None:
    tid = "5b8efff798038103d269b633813fc60c"
    body = json.dumps(_request([_span(tid, "eee19b7ec3c1b174", None, T0, "root"),
                                _span(tid, "eee19b7ec3c1b175", "eee19b7ec3c1b174", T0 + 1)])).encode()
    with serving(OtlpReceiver(DuckDBTraceStore(db))) as url:
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        answers = [httpx.post(f"{url}/v1/traces", content=gzip.compress(body), headers=headers) for _ in range(2)]
    assert [(a.status_code, a.headers["content-type"], a.json()) for a in answers] == [(200, "application/json", {})] * 2
    assert stored_rows(db, "SELECT trace_id, status, name, span_count FROM traces") == [(tid, "OK", "root", 2)]
    assert stored_rows(db, "SELECT count(*) FROM spans") == [(2,)]


def test_a_partly_bad_request_stores_the_good_traces_and_names_the_rejected_spans(db: Path) -> None:
    good, bad = "a" * 32, "b" * 32
    request = _request([_span(good, "1" * 16, None, T0), _span(bad, "2" * 16, None, None, "no-start")])
    with serving(OtlpReceiver(DuckDBTraceStore(db))) as url:
        answer = httpx.post(f"{url}/v1/traces", json=request)
    assert answer.status_code == 200
    partial = answer.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert partial["errorMessage"] == (f"1 span(s) rejected: trace {bad}: span 'no-start' (2222222222222222) has no "
                                       "startTimeUnixNano; every OTLP span needs one.")
    assert stored_rows(db, "SELECT trace_id FROM traces") == [(good,)]


def test_protobuf_answers_protobuf_and_refusals_say_why(db: Path) -> None:
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    agent_trace(provider, turns=1)
    body = encode_spans(memory.get_finished_spans()).SerializeToString()
    with serving(OtlpReceiver(DuckDBTraceStore(db), max_body_bytes=len(body) + 10)) as url:
        ok = httpx.post(f"{url}/v1/traces", content=body, headers={"content-type": "application/x-protobuf"})
        garbage = httpx.post(f"{url}/v1/traces", content=b"\xff\xff\xff not protobuf",
                             headers={"content-type": "application/x-protobuf"})
        text = httpx.post(f"{url}/v1/traces", content=b"hi", headers={"content-type": "text/plain"})
        huge = httpx.post(f"{url}/v1/traces", content=body + b"\x00" * 20, headers={"content-type": "application/json"})
        bomb = httpx.post(f"{url}/v1/traces", content=gzip.compress(b" " * 10_000),
                          headers={"content-type": "application/json", "content-encoding": "gzip"})
    assert ok.status_code == 200 and ok.headers["content-type"] == "application/x-protobuf"
    assert ExportTraceServiceResponse.FromString(ok.content) == ExportTraceServiceResponse()
    assert garbage.status_code == 400 and b"nothing was stored" in garbage.content
    assert (text.status_code, text.json()["message"]) == (
        415, "Content-Type 'text/plain' is not supported; send application/x-protobuf or application/json (OTLP/HTTP).")
    assert huge.status_code == 413 and bomb.status_code == 413
    assert stored_rows(db, "SELECT count(*) FROM spans") == [(3,)]


def test_a_full_queue_answers_503_with_retry_after(db: Path) -> None:
    request = _request([_span("c" * 32, f"{i:016x}", None, T0) for i in range(3)])
    with serving(OtlpReceiver(DuckDBTraceStore(db), max_pending_spans=2)) as url:
        answer = httpx.post(f"{url}/v1/traces", json=request)
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "2")
    assert "send smaller batches" in answer.json()["message"]


def test_the_exporter_with_gzip_and_json_mirror_of_the_same_spans_store_them_once(db: Path) -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    agent_trace(provider, turns=2)
    spans = memory.get_finished_spans()
    with serving(OtlpReceiver(DuckDBTraceStore(db))) as url:
        exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces", compression=Compression.Gzip)
        assert exporter.export(spans).name == "SUCCESS"
        as_json = MessageToJson(encode_spans(spans))  # ids in base64 here: the reader takes both
        again = httpx.post(f"{url}/v1/traces", content=as_json, headers={"content-type": "application/json"})
    assert again.status_code == 200
    assert stored_rows(db, "SELECT count(*), count(DISTINCT span_id) FROM spans") == [(5, 5)]
