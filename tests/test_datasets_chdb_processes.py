"""A dataset writer over chdb killed (SIGKILL) between writing its records and committing its header.

chdb allows one folder per process and this test process may already run one, so the store here
is opened by child processes: the writer, killed for real, and a reader after it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: A child that builds ``errors@1``, then starts ``errors@2`` and stops for good once that version's
#: records are written and before its header commits (the parent kills it there).
_WRITER = """
import sys, time
from server.storage.factory import build_backend, parse_store_url
from tests.factory import small_set
from tools.datasets.builder import BuildDatasetInput, build_dataset_from_tags
from tools.datasets.merge import MergeRecordsInput, merge_records

backend = build_backend(parse_store_url(sys.argv[1]))
backend.traces.write_traces(small_set())
backend.traces.set_tag(trace_ids=["t02", "t05", "t09"], expr=None, key="c", value="e", by="t", now_ms=1)
ds = backend.features.datasets
build_dataset_from_tags(ds, BuildDatasetInput(name="errors", tags=["c=e"]), now_ms=1000)

def stop_before_the_header(row):
    print("records-written", flush=True)
    time.sleep(600)

ds.headers.commit = stop_before_the_header
merge_records(ds, MergeRecordsInput(name="errors", records=[{"trace_id": "t11"}, {"trace_id": "t12"}]), now_ms=2000)
"""

#: A child that reports what a reader sees, then writes version 2 itself.
_READER = """
import json, sys
from server.storage.factory import build_backend, parse_store_url
from tools.datasets.merge import MergeRecordsInput, merge_records

backend = build_backend(parse_store_url(sys.argv[1]))
ds = backend.features.datasets
seen = {"versions": [v.version for v in ds.versions("errors")],
        "v1": [r.record_id for r in ds.records("errors", 1)],
        "v2": [r.record_id for r in ds.records("errors", 2)],
        "stored_v2_rows": backend.traces.client.read(
            "SELECT count() FROM dataset_records WHERE name = 'errors' AND version = 2")[0][0]}
written = merge_records(ds, MergeRecordsInput(name="errors", records=[{"trace_id": "t01"}]), now_ms=3000)
seen["written"] = written.version
seen["v2_after"] = [r.record_id for r in ds.records("errors", 2)]
print(json.dumps(seen))
"""


def _child(script: str, url: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, url], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_a_writer_killed_after_its_records_before_its_header_leaves_no_version(tmp_path: Path) -> None:
    url = f"chdb://{tmp_path / 'store'}"
    writer = _child(_WRITER, url)
    try:
        line = writer.stdout.readline() if writer.stdout else ""
        assert line.strip() == "records-written", writer.stderr.read() if writer.stderr else ""
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(30)
    assert writer.returncode == -signal.SIGKILL

    reader = _child(_READER, url)
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["stored_v2_rows"] == 5  # the killed write's records are on disk …
    assert (seen["versions"], seen["v2"]) == ([1], [])  # … and invisible: no header names them
    assert sorted(seen["v1"]) == ["t02", "t05", "t09"]
    assert (seen["written"], sorted(seen["v2_after"])) == (2, ["t01", "t02", "t05", "t09"])  # none of t11/t12
