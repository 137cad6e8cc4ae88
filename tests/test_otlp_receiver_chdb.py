"""`tracesieve receive --store chdb:///…` killed with SIGKILL mid-stream keeps every span it acknowledged.

The receiver answers 200 only after its group commit's insert returned, so an acknowledged span is
in the chdb folder even when the process dies a moment later. chdb allows one process per folder,
so the receiver and the reader after the crash are separate processes (none is this test's own).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.test_otlp_live import make_traces, span_ids
from tests.test_transports import REPO, free_port

_READ = """import json, sys
from server.storage.factory import build_backend, parse_store_url
store = build_backend(parse_store_url(sys.argv[1])).traces
print(json.dumps([r[0] for r in store.client.read("SELECT span_id FROM spans")]))
print(json.dumps(store.stats()["trace_count"]))"""


def start_receiver(url: str, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "server", "receive", "--store", url, "--port", str(port)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
        try:
            if httpx2.get(f"http://127.0.0.1:{port}/v1/traces", timeout=1).status_code == 405:
                return proc
        except httpx2.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("the receiver did not start")


def test_a_chdb_receiver_killed_mid_stream_has_stored_every_span_it_acknowledged(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'chdb'}"
    port = free_port()
    traces = make_traces(300, spans_per_trace=4)
    acked: set[str] = set()
    stop = threading.Event()

    def stream() -> None:
        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=2)
        for spans in traces:
            if stop.is_set():
                return
            if exporter.export(spans) == SpanExportResult.SUCCESS:
                acked.update(span_ids(spans))

    receiver = start_receiver(url, port)
    sender = threading.Thread(target=stream)
    sender.start()
    deadline = time.monotonic() + 120
    while len(acked) < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(receiver.pid, signal.SIGKILL)  # mid-stream: requests are in flight
    receiver.wait(10)
    stop.set()
    sender.join(60)
    read = subprocess.run([sys.executable, "-c", _READ, url], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert read.returncode == 0, read.stderr
    lines = read.stdout.strip().splitlines()
    stored, trace_count = set(json.loads(lines[-2])), json.loads(lines[-1])
    assert len(acked) >= 200
    assert acked - stored == set()
    assert trace_count >= len(acked) // 4  # each acknowledged trace (4 spans) has its row too
