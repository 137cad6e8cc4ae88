"""`tracesieve receive --store chdb:///…` killed with SIGKILL mid-stream keeps every span it acknowledged.

The receiver answers 200 only after its group commit's insert returned, so an acknowledged span is
in the chdb folder even when the process dies a moment later. chdb allows one process per folder,
so the receiver and the reader after the crash are separate processes (none is this test's own).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.test_otlp_live import acked_then_killed, make_traces, start_receiver
from tests.test_transports import REPO, free_port

_READ = """import json, sys
from server.storage.factory import build_backend, parse_store_url
store = build_backend(parse_store_url(sys.argv[1])).traces
print(json.dumps([r[0] for r in store.client.read("SELECT span_id FROM spans")]))
print(json.dumps(store.stats()["trace_count"]))"""


def test_a_chdb_receiver_killed_mid_stream_has_stored_every_span_it_acknowledged(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'chdb'}"
    port = free_port()
    acked = acked_then_killed(start_receiver(url, port), port, make_traces(300, spans_per_trace=4))
    read = subprocess.run([sys.executable, "-c", _READ, url], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert read.returncode == 0, read.stderr
    lines = read.stdout.strip().splitlines()
    stored, trace_count = set(json.loads(lines[-2])), json.loads(lines[-1])
    assert acked - stored == set()
    assert trace_count >= len(acked) // 4  # each acknowledged trace (4 spans) has its row too
