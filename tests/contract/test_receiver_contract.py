"""POST /v1/traces into every engine, with the real OpenTelemetry exporter over real HTTP on 127.0.0.1.

The receiver and its group commit (``server/http``) sit on the ``TraceStore`` port, so over
ClickHouse each round of queued requests is one ``write_traces`` (one insert per table). What must
hold on both engines: long traces sent in pieces, children first and the root last, end as one
trace whose row is re-derived from all its spans; a request delivered twice stores nothing twice;
the 200 comes only after the spans are stored (read back through a second handle on the store).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable

import httpx
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

from server.http.otlp_receiver import OtlpReceiver
from server.storage.backend import Backend
from tests.live_server import serving
from tests.test_otlp_receiver import T0, _request, _span, agent_trace


def test_the_real_exporter_sends_long_traces_in_pieces_and_each_ends_whole(
        empty_backend: Backend, reopen: Callable[[], Backend]) -> None:
    receiver = OtlpReceiver(empty_backend.traces)
    memory = InMemorySpanExporter()
    with serving(receiver) as url:
        provider = TracerProvider(resource=Resource.create({"service.name": "agent",
                                                            "deployment.environment.name": "prod"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces"),
                                                       max_export_batch_size=4, schedule_delay_millis=50))
        provider.add_span_processor(SimpleSpanProcessor(memory))
        for _ in range(3):
            agent_trace(provider, turns=5)  # 11 spans each: at least 3 requests per trace, the root last
        assert provider.force_flush(20_000)
        provider.shutdown()
    assert receiver.committer.stats.requests >= 9
    assert receiver.committer.stats.spans_new == 33
    store = reopen().traces
    stats = store.stats()
    assert (stats["trace_count"], stats["span_count"]) == (3, 33)
    page = store.search(None, [], limit=10, after=None, now_ms=T0 // 10**6, count_cap=100)
    assert [(r.status, r.name, r.span_count, r.input_tokens, r.environment, r.tool_names) for r in page.rows] == [
        ("OK", "invoke_agent support", 11, 10 + 11 + 12 + 13 + 14, "prod", ["lookup"])] * 3
    roots = {format(s.context.trace_id, "032x"): s for s in memory.get_finished_spans() if s.parent is None}
    assert {r.trace_id: r.execution_time_ms for r in page.rows} == {
        tid: (s.end_time - s.start_time) // 1_000_000 for tid, s in roots.items()}
    for trace_id in roots:
        loaded = store.load_trace(trace_id)
        assert loaded is not None and len({s.span_id for s in loaded.spans}) == 11


def test_a_request_delivered_twice_and_a_late_root_store_one_trace(
        empty_backend: Backend, reopen: Callable[[], Backend]) -> None:
    tid = "5b8efff798038103d269b633813fc60c"
    children = json.dumps(_request([_span(tid, "eee19b7ec3c1b175", "eee19b7ec3c1b174", T0 + 1, "child"),
                                    _span(tid, "eee19b7ec3c1b176", "eee19b7ec3c1b174", T0 + 2, "child")])).encode()
    root = json.dumps(_request([_span(tid, "eee19b7ec3c1b174", None, T0, "root")])).encode()
    receiver = OtlpReceiver(empty_backend.traces)
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    with serving(receiver) as url:
        answers = [httpx.post(f"{url}/v1/traces", content=gzip.compress(body), headers=headers)
                   for body in (children, children, root, children)]
        assert [a.status_code for a in answers] == [200] * 4
        before_root = reopen().traces  # what the store held after each acknowledged request is durable
        assert before_root.stats()["span_count"] == 3
    stats = receiver.committer.stats
    assert (stats.spans_new, stats.spans_unchanged) == (3, 4)
    store = reopen().traces
    page = store.search(None, [], limit=10, after=None, now_ms=T0 // 10**6, count_cap=100)
    assert [(r.trace_id, r.status, r.name, r.span_count) for r in page.rows] == [(tid, "OK", "root", 3)]
    assert page.total_matches == 1
