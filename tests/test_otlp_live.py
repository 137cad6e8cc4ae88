"""The receiver as people run it: `tracesieve serve --http` and `tracesieve receive` processes.

Spans stream in from the real OTLP/HTTP exporter while an MCP client searches and tags the same
store; a receiver killed with SIGKILL mid-stream must have stored every span it answered 200 for.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.factory import stored_rows
from tests.test_transports import REPO, free_port, start_http, stdio_params
from tests.live_server import stop_process

pytestmark = pytest.mark.anyio


def make_traces(count: int, spans_per_trace: int = 5) -> list[list[ReadableSpan]]:
    """``count`` traces made by the real SDK, each as the list of its finished spans (root last)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.live")
    out = []
    for i in range(count):
        with tracer.start_as_current_span(f"request {i}", attributes={"input.value": f"question {i}"}):
            for j in range(spans_per_trace - 1):
                with tracer.start_as_current_span(f"step {j}"):
                    pass
        out.append(list(memory.get_finished_spans()))
        memory.clear()
    return out


def span_ids(spans: list[ReadableSpan]) -> set[str]:
    return {format(s.context.span_id, "016x") for s in spans}


def start_receiver(db: Path | str, port: int) -> subprocess.Popen:
    """``tracesieve receive`` on ``db`` (a DuckDB file, or a ``--store`` URL) in its own process."""
    store = ["--db", str(db)] if isinstance(db, Path) else ["--store", db]
    proc = subprocess.Popen([sys.executable, "-m", "server", "receive", *store, "--port", str(port)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TRACESIEVE_LOCK_TIMEOUT": "30"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            if httpx2.get(f"http://127.0.0.1:{port}/v1/traces", timeout=1).status_code == 405:
                return proc
        except httpx2.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the receiver did not start")


def acked_then_killed(receiver: subprocess.Popen, port: int, traces: list[list[ReadableSpan]]) -> set[str]:
    """Stream ``traces`` at the receiver with the real exporter and SIGKILL it once 200 spans are
    acknowledged, requests still in flight; the ids of the spans it acknowledged."""
    acked: set[str] = set()
    stop = threading.Event()

    def stream() -> None:
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=2)
        for spans in traces:
            if stop.is_set():
                return
            if exporter.export(spans) == SpanExportResult.SUCCESS:
                acked.update(span_ids(spans))

    sender = threading.Thread(target=stream)
    sender.start()
    deadline = time.monotonic() + 120
    while len(acked) < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(receiver.pid, signal.SIGKILL)
    receiver.wait(10)
    stop.set()
    sender.join(60)
    assert len(acked) >= 200
    return acked


async def test_serve_http_receives_spans_behind_the_token_while_an_agent_searches_and_tags(tmp_path: Path) -> None:
    db = tmp_path / "live.duckdb"
    proc, port = start_http(db, env={"TRACESIEVE_TOKEN": "s3cret-token"})
    base = f"http://127.0.0.1:{port}"
    traces = make_traces(12)
    try:
        denied = httpx2.post(f"{base}/v1/traces", content=b"", headers={"content-type": "application/x-protobuf"})
        assert denied.status_code == 401
        exporter = OTLPSpanExporter(endpoint=f"{base}/v1/traces", headers={"Authorization": "Bearer s3cret-token"})
        # each trace in two requests, the root in the second, while the agent works on the store
        sent = threading.Thread(target=lambda: [exporter.export(part) for t in traces for part in (t[:3], t[3:])])
        authed = httpx2.AsyncClient(headers={"Authorization": "Bearer s3cret-token"})
        async with authed, Client(streamable_http_client(f"{base}/mcp", http_client=authed)) as client:
            sent.start()
            seen: list[int] = []
            while sent.is_alive() or not seen or seen[-1] < 12:
                page = (await client.call_tool("search_traces", {"limit": 1})).structured_content
                seen.append(page["total_matches"])
                if page["traces"]:
                    tag = await client.call_tool("tag_trace", {"key": "seen", "value": "yes",
                                                               "trace_ids": [page["traces"][0]["trace_id"]]})
                    assert not tag.is_error, tag.content
                await anyio.sleep(0.05)
            sent.join()
            final = (await client.call_tool("search_traces", {"filter": "attributes.status = 'OK'"}))
        assert final.structured_content["total_matches"] == 12
        assert seen == sorted(seen)  # traces only ever appear
    finally:
        stop_process(proc)
    assert stored_rows(db, "SELECT count(*), count(DISTINCT span_id) FROM spans") == [(60, 60)]
    assert stored_rows(db, "SELECT count(*) FROM tags WHERE key = 'seen'")[0][0] >= 1


def test_a_receiver_killed_mid_stream_has_stored_every_span_it_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "live.duckdb"
    port = free_port()
    acked = acked_then_killed(start_receiver(db, port), port, make_traces(400, spans_per_trace=4))
    restarted = start_receiver(db, port)  # the store opens again after the crash
    restarted.terminate()
    restarted.wait(20)
    stored = {row[0] for row in stored_rows(db, "SELECT span_id FROM spans")}
    assert acked - stored == set()


async def test_stdio_servers_on_the_store_keep_working_while_the_receiver_writes(tmp_path: Path) -> None:
    db = tmp_path / "live.duckdb"
    port = free_port()
    receiver = start_receiver(db, port)
    traces = make_traces(60)
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces")
    results: list[SpanExportResult] = []
    sender = threading.Thread(target=lambda: results.extend(exporter.export(t) for t in traces))
    counts: dict[str, list[int]] = {}

    async def agent(name: str) -> None:
        async with Client(stdio_params(db, idle_release_ms=50)) as client:
            counts[name] = []
            for _ in range(5):
                page = await client.call_tool("search_traces", {"limit": 1})
                assert not page.is_error, page.content
                counts[name].append(page.structured_content["total_matches"])

    try:
        sender.start()
        async with anyio.create_task_group() as tg:
            tg.start_soon(agent, "alpha")
            tg.start_soon(agent, "beta")
        sender.join(120)
    finally:
        receiver.terminate()
        receiver.wait(20)
    assert results == [SpanExportResult.SUCCESS] * 60
    assert all(c == sorted(c) for c in counts.values()) and len(counts) == 2
    assert stored_rows(db, "SELECT count(*) FROM traces WHERE status = 'OK'") == [(60,)]
