"""`tracesieve optimize` on ClickHouse: rows written again are folded on disk, and reads do not change."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from server.storage.backend import Backend
from server.storage.clickhouse.optimize import fold_replacing_tables
from tests.factory import small_set, trace
from tools.traces.search import SearchTracesInput, search_traces
from tools.traces.tagging import TagTraceInput, UntagTraceInput, tag_trace, untag_trace

REPO = Path(__file__).resolve().parents[2]


def _stored_rows(backend: Backend, table: str) -> int:
    """Rows physically stored (every version and tombstone): a raw read without FINAL, on purpose."""
    client = backend.traces.client  # type: ignore[attr-defined]
    return int(client.raw.query(f"SELECT count() FROM {table}").result_rows[0][0])


def _reads(backend: Backend) -> dict[str, Any]:
    """What the tools see: every search result, each trace whole, the stats and the tag histories."""
    store = backend.traces
    page = search_traces(store, SearchTracesInput(filter="", limit=200), now_ms=0)
    ids = sorted(t.trace_id for t in page.traces)
    return {"search": [t.model_dump() for t in page.traces],
            "tagged": [t.trace_id for t in search_traces(store, SearchTracesInput(
                filter="tags.eval_candidate IS NOT NULL", limit=200), now_ms=0).traces],
            "traces": [store.load_trace(i).model_dump() for i in ids],  # type: ignore[union-attr]
            "stats": store.stats(),
            "history": [store.tag_history(i) for i in ids]}  # type: ignore[attr-defined]


@pytest.mark.parametrize("engine", ["chdb", "clickhouse"], indirect=True)  # DuckDB's optimize is a re-sort
def test_optimize_folds_rows_written_again_and_reads_stay_the_same(engine: str, backend: Backend) -> None:
    store = backend.traces
    # Versions to fold: every trace re-sent with a changed answer (new span and trace rows), a tag set
    # and removed (a tombstone over it), another tag changed twice (t07 has eval_candidate=slow already).
    store.write_traces([trace(t.trace_id, i, answer=f"changed {i}") for i, t in enumerate(small_set())])
    tag_trace(store, TagTraceInput(trace_ids=["t01", "t02"], key="eval_candidate", value="a"), by="test", now_ms=1)
    tag_trace(store, TagTraceInput(trace_ids=["t01"], key="eval_candidate", value="b"), by="test", now_ms=2)
    untag_trace(store, UntagTraceInput(trace_ids=["t02"], key="eval_candidate"), by="test", now_ms=3)
    before = {t: _stored_rows(backend, t) for t in ("traces", "spans", "tags")}
    reads = _reads(backend)
    assert before["spans"] > 36 and before["traces"] > 12, "the test needs duplicate versions to fold"
    assert sorted(reads["tagged"]) == ["t01", "t07"] and len(reads["search"]) == 12

    report = fold_replacing_tables(store.client, engine=engine)  # type: ignore[attr-defined]

    folded = {t.table: t for t in report.tables}
    for table in ("traces", "spans", "tags"):
        assert folded[table].rows_before == before[table]
        assert folded[table].rows_after == _stored_rows(backend, table) < before[table]
        assert folded[table].parts_after <= folded[table].parts_before
    assert _stored_rows(backend, "spans") == 36 and _stored_rows(backend, "traces") == 12  # one row per key
    assert report.rows_folded == sum(t.rows_before - t.rows_after for t in report.tables) > 0
    assert _reads(backend) == reads
    assert reads["traces"][0]["response"] == json.dumps({"content": "changed 0"})


def test_the_optimize_command_reports_what_it_folded_on_a_chdb_store(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    write_twice = ("from server.storage.factory import StoreUrl, build_backend; from tests.factory import small_set, "
                   "trace; import sys; b = build_backend(StoreUrl('chdb', path=__import__('pathlib').Path(sys.argv[1])));"
                   " b.traces.write_traces(small_set());"
                   " b.traces.write_traces([trace(t.trace_id, i, answer='again') for i, t in enumerate(small_set())])")
    subprocess.run([sys.executable, "-c", write_twice, str(folder)], cwd=REPO, check=True, timeout=120)
    done = subprocess.run([sys.executable, "-m", "server", "optimize", "--store", f"chdb://{folder}"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    spans = next(t for t in report["tables"] if t["table"] == "spans")
    assert report["engine"] == "chdb" and spans["rows_before"] == 72 and spans["rows_after"] == 36
    again = json.loads(subprocess.run([sys.executable, "-m", "server", "optimize", "--store", f"chdb://{folder}"],
                                      cwd=REPO, capture_output=True, text=True, timeout=120, check=True).stdout)
    assert again["rows_folded"] == 0  # nothing left to fold
