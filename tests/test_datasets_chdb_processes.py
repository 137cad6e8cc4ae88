"""A dataset writer over chdb killed (SIGKILL) between writing its records and committing its header,
and the sweep that later tombstones the records it left.

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


#: A child that sweeps orphan records as of ``now + argv[2]`` ms and reports what stays readable.
_SWEEPER = """
import json, sys
from server.storage.factory import build_backend, parse_store_url
from tools import clock

backend = build_backend(parse_store_url(sys.argv[1]))
ds = backend.features.datasets
sweep = ds.sweep_orphan_records(now_ms=clock.now_ms() + int(sys.argv[2]))
print(json.dumps({"sweep": sweep.model_dump(),
                  "versions": {v.version: sorted(r.record_id for r in ds.records("errors", v.version))
                               for v in ds.versions("errors")},
                  "live_rows": backend.traces.client.read("SELECT count() FROM dataset_records")[0][0]}))
"""


def _child(script: str, url: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, url, *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})


def _sweep(url: str, ahead_ms: int) -> dict:
    sweeper = _child(_SWEEPER, url, str(ahead_ms))
    out, err = sweeper.communicate(timeout=120)
    assert sweeper.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_a_writer_killed_after_its_records_before_its_header_leaves_no_version_and_its_records_are_swept(
        tmp_path: Path) -> None:
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
    committed = {"1": ["t02", "t05", "t09"], "2": ["t01", "t02", "t05", "t09"]}

    young = _sweep(url, 0)  # the orphan was written moments ago: it could be a writer about to commit
    assert young["sweep"] == {"batches_swept": 0, "records_swept": 0, "batches_in_flight": 1, "batches_undated": 0}
    assert young["versions"] == committed and young["live_rows"] == 3 + 4 + 5

    old = _sweep(url, 2 * 3_600_000)  # two hours on: abandoned
    assert old["sweep"] == {"batches_swept": 1, "records_swept": 5, "batches_in_flight": 0, "batches_undated": 0}
    assert old["versions"] == committed and old["live_rows"] == 3 + 4
    assert _sweep(url, 2 * 3_600_000)["sweep"]["batches_swept"] == 0  # swept once, then gone

    done = subprocess.run([sys.executable, "-m", "server", "optimize", "--store", url], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    records = next(t for t in report["tables"] if t["table"] == "dataset_records")
    assert report["dataset_orphans"]["batches_in_flight"] == 0
    assert records["rows_after"] == 3 + 4 + 5  # the orphans' rows folded into their key-only tombstones
    assert _sweep(url, 0)["versions"] == committed
