"""The DuckDB store itself: schema, idempotent bulk writes, views, concurrent process access."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import duckdb
import pytest

from server.storage.duckdb.connection import connect
from server.storage.duckdb.store import DuckDBTraceStore
from server.storage.duckdb.schema import SCHEMA_VERSION
from tests.factory import small_set, trace
from tools.errors import StoreBusyError


def _count(path: Path, sql: str) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def test_a_new_store_is_created_at_the_current_schema_version(tmp_path: Path) -> None:
    store = DuckDBTraceStore(tmp_path / "sub" / "new.duckdb")
    assert store.path.exists()
    assert store.schema_version() == SCHEMA_VERSION


def test_reopening_a_store_does_not_reapply_migrations(db_path: Path) -> None:
    DuckDBTraceStore(db_path)
    DuckDBTraceStore(db_path)
    assert _count(db_path, "SELECT count(*) FROM schema_version") == SCHEMA_VERSION


def test_a_store_from_a_newer_tracesieve_is_refused_with_advice(db_path: Path) -> None:
    con = duckdb.connect(str(db_path))
    con.execute("INSERT INTO schema_version VALUES (999, 0)")
    con.close()
    with pytest.raises(Exception, match="newer than this tracesieve understands"):
        DuckDBTraceStore(db_path)


def test_rewriting_the_same_traces_replaces_them_instead_of_duplicating(db_path: Path) -> None:
    store = DuckDBTraceStore(db_path)
    before = (_count(db_path, "SELECT count(*) FROM traces"), _count(db_path, "SELECT count(*) FROM spans"))
    store.write_traces(small_set())
    after = (_count(db_path, "SELECT count(*) FROM traces"), _count(db_path, "SELECT count(*) FROM spans"))
    assert before == after == (12, 36)


def test_a_rewritten_trace_takes_the_new_content(store: DuckDBTraceStore) -> None:
    store.write_traces([trace("t01", 0, status="ERROR", answer="changed")])
    loaded = store.load_trace("t01")
    assert loaded is not None and loaded.status == "ERROR" and "changed" in (loaded.response or "")


def test_user_tags_survive_a_reingest(store: DuckDBTraceStore) -> None:
    store.set_tag(trace_ids=["t01"], expr=None, key="reviewed", value="yes", by="test", now_ms=1)
    store.write_traces([trace("t01", 0)])
    assert store.load_trace("t01").tags == {"environment": "production", "reviewed": "yes"}


def test_duplicate_ids_in_one_batch_keep_the_last_copy(tmp_path: Path) -> None:
    store = DuckDBTraceStore(tmp_path / "d.duckdb")
    assert store.write_traces([trace("x", 0, answer="first"), trace("x", 0, answer="second")]).traces == 1
    assert "second" in store.load_trace("x").response


def test_derived_columns_count_spans_errors_and_tools(db_path: Path) -> None:
    con = duckdb.connect(str(db_path), read_only=True)
    row = con.execute("SELECT span_count, error_count, tool_names FROM traces WHERE trace_id = 't09'").fetchone()
    con.close()
    assert row == (3, 2, ["lookup_order"])


def test_databricks_style_views_expose_one_row_per_trace_and_per_span(db_path: Path) -> None:
    con = duckdb.connect(str(db_path), read_only=True)
    unified = con.execute("SELECT state, tags['environment'], total_tokens, request_time "
                          "FROM trace_unified WHERE trace_id = 't05'").fetchone()
    spans = con.execute("SELECT count(*), sum(CASE WHEN status_code = 'ERROR' THEN 1 ELSE 0 END), "
                        "max(duration_ms) FROM otel_spans").fetchone()
    con.close()
    assert unified[:3] == ("ERROR", "staging", 150)
    assert unified[3].year == 2025
    assert spans == (36, 5, 9000.0)


def test_load_trace_round_trips_every_field(store: DuckDBTraceStore) -> None:
    original = trace("rt", 3, tags={"a": "1"})
    store.write_traces([original])
    assert store.load_trace("rt") == original


def _hold_lock(path: str, ready: multiprocessing.Event, release: multiprocessing.Event) -> None:  # type: ignore[type-arg]
    con = duckdb.connect(path)
    ready.set()
    release.wait(20)
    con.close()


def test_a_lock_held_by_another_process_becomes_a_clear_busy_error(db_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(db_path), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(StoreBusyError) as caught:
            connect(db_path, read_only=True, lock_timeout_s=0.3).close()
        message = str(caught.value)
        assert f"PID {holder.pid}" in message and "TRACESIEVE_LOCK_TIMEOUT" in message
    finally:
        release.set()
        holder.join(20)


def test_a_briefly_held_lock_is_waited_for(db_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(db_path), ready, release))
    holder.start()
    assert ready.wait(30)
    threading.Timer(0.5, release.set).start()
    assert DuckDBTraceStore(db_path, lock_timeout_s=15).load_trace("t01") is not None
    holder.join(20)


def _open_rw_elsewhere(path: str, result: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    try:
        duckdb.connect(path).close()
        result.put("opened")
    except duckdb.IOException as error:
        result.put(f"locked: {error}")


def _try_open_in_another_process(path: Path) -> str:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_open_rw_elsewhere, args=(str(path), queue))
    proc.start()
    proc.join(60)
    return queue.get(timeout=5)


def test_a_burst_of_calls_reuses_one_connection_and_releases_the_file_when_idle(db_path: Path) -> None:
    store = DuckDBTraceStore(db_path, idle_release_s=0.3)
    with store.reading() as first:
        pass
    with store.reading() as second:
        # held for the burst: a writer elsewhere waits (read-only still admits other readers)
        assert _try_open_in_another_process(db_path).startswith("locked")
    assert first is second
    time.sleep(0.8)
    assert _try_open_in_another_process(db_path) == "opened"


def test_a_write_after_reads_upgrades_the_kept_connection(db_path: Path) -> None:
    store = DuckDBTraceStore(db_path, idle_release_s=5)
    assert store.load_trace("t01") is not None
    store.set_tag(trace_ids=["t01"], expr=None, key="k", value="v", by="test", now_ms=1)
    assert store.load_trace("t01").tags["k"] == "v"
    store.release()
    assert _count(db_path, "SELECT count(*) FROM tags WHERE key = 'k'") == 1


def test_writing_into_a_reopened_store_while_the_connection_is_kept(db_path: Path) -> None:
    """Opening an existing store reads its schema version with ``fetchone``; DuckDB 2 left that result
    unfinished on the kept connection and refused the ingest's ``register`` (``tracesieve ingest`` into
    any existing store failed whenever the connection outlived the version check)."""
    store = DuckDBTraceStore(db_path, idle_release_s=30)
    try:
        assert store.write_traces([trace("t-new", 5)]).traces == 1
        assert store.load_trace("t-new") is not None
    finally:
        store.release()
    assert _count(db_path, "SELECT count(*) FROM traces WHERE trace_id = 't-new'") == 1


def test_a_half_read_result_does_not_leak_into_the_next_use_of_the_kept_connection(db_path: Path) -> None:
    store = DuckDBTraceStore(db_path, idle_release_s=30)
    try:
        with store.writing() as con:
            assert con.execute("SELECT trace_id FROM traces ORDER BY trace_id").fetchone() is not None
        assert store.write_traces([trace("t-after", 6)]).traces == 1
        with store.writing() as con:
            con.execute("SELECT trace_id FROM traces")  # not read at all
        assert store.write_traces([trace("t-after-2", 7)]).traces == 1
    finally:
        store.release()
    assert _count(db_path, "SELECT count(*) FROM traces WHERE trace_id LIKE 't-after%'") == 2
