"""query_sql is read-only and cannot reach files, the network or extensions."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from server.storage.duckdb.store import DuckDBTraceStore
from tools.errors import InvalidInputError
from tools.traces.sql import QuerySqlInput, query_sql
from tools.traces.tagging import TagTraceInput, tag_trace


def run(store: DuckDBTraceStore, sql: str, limit: int = 100):
    return query_sql(store, QuerySqlInput(sql=sql, limit=limit))


def settings(store: DuckDBTraceStore, *names: str) -> tuple:
    """Settings as a query_sql cursor sees them (query_sql itself refuses to show them)."""
    with store._keeper.sandboxed_cursor(lock_timeout_s=1, idle_release_s=0) as cursor:
        return cursor.execute("SELECT " + ", ".join(f"current_setting('{n}')" for n in names)).fetchone()


def test_views_answer_aggregate_questions(store: DuckDBTraceStore) -> None:
    result = run(store, "SELECT environment, count(*) n FROM trace_unified GROUP BY 1 ORDER BY 1")
    assert result.columns == ["environment", "n"]
    assert result.rows == [["production", 8], ["staging", 4]]
    assert result.truncated is False


def test_rows_beyond_the_limit_are_flagged(store: DuckDBTraceStore) -> None:
    result = run(store, "SELECT trace_id, request_time FROM trace_unified ORDER BY 1", limit=5)
    assert result.row_count == 5 and result.truncated is True
    assert result.rows[0][1].startswith("2025-11-13T02:13:20")


def test_long_cells_are_cut_with_a_marker(store: DuckDBTraceStore) -> None:
    cell = run(store, "SELECT response FROM traces WHERE trace_id = 't12'").rows[0][0]
    assert cell.endswith("more chars]") or "…[truncated" in cell
    assert len(cell) < 2100


@pytest.mark.parametrize("sql, expected", [
    ("INSERT INTO tags VALUES ('t01', 'k', 'v', 0, 'x')", "INSERT statements are refused"),
    ("DELETE FROM traces", "DELETE statements are refused"),
    ("DROP TABLE traces", "DROP statements are refused"),
    ("UPDATE traces SET status = 'OK'", "UPDATE statements are refused"),
    ("CREATE TABLE x AS SELECT 1", "CREATE statements are refused"),
    ("COPY traces TO '/tmp/tracesieve-leak.csv'", "COPY statements are refused"),
    ("ATTACH '/tmp/other.duckdb' AS o", "ATTACH statements are refused"),
    ("INSTALL httpfs", "statements are refused"),
    ("LOAD httpfs", "LOAD statements are refused"),
    ("SET enable_external_access = true", "SET statements are refused"),
    ("SELECT 1; DELETE FROM traces", "exactly one statement; got 2"),
    ("SELECT * FROM read_csv('/etc/passwd')", "refuses the table function 'read_csv()'"),
    ("SELECT * FROM read_text('/etc/hostname')", "refuses the table function 'read_text()'"),
    ("SELECT * FROM 'https://example.com/data.parquet'", "'https://example.com/data.parquet' is not one of them"),
    ("SELECT * FROM read_json_auto('http://127.0.0.1:1/x.json')", "refuses the table function"),
])
def test_writes_files_network_and_settings_are_refused(store: DuckDBTraceStore, db_path: Path, sql: str,
                                                       expected: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        run(store, sql)
    assert expected in str(caught.value)
    con = duckdb.connect(str(db_path), read_only=True)
    assert con.execute("SELECT count(*) FROM traces").fetchone()[0] == 12
    assert con.execute("SELECT count(*) FROM tags").fetchone()[0] == 13
    con.close()
    assert not Path("/tmp/tracesieve-leak.csv").exists()


def test_a_sql_error_names_the_tables(store: DuckDBTraceStore) -> None:
    with pytest.raises(InvalidInputError, match="SQL error: .*Tables and views: traces, spans"):
        run(store, "SELECT nope FROM traces")


def test_the_sandbox_holds_on_a_connection_kept_from_a_write(db_path: Path) -> None:
    """A server keeps its connection between calls; a query right after a write (which holds
    the file read-write) must still run on the locked-down read-only connection."""
    kept = DuckDBTraceStore(db_path, idle_release_s=60)
    try:
        tag_trace(kept, TagTraceInput(trace_ids=["t01"], key="reviewed", value="yes"), by="test", now_ms=1)
        with kept._keeper.sandboxed_cursor(lock_timeout_s=1, idle_release_s=60) as cursor:
            with pytest.raises(duckdb.PermissionException, match="file system operations are disabled"):
                cursor.execute("SELECT * FROM read_text('/etc/hostname')")
        assert run(kept, "SELECT value FROM tags WHERE trace_id = 't01' AND key = 'reviewed'").rows == [["yes"]]
        tag_trace(kept, TagTraceInput(trace_ids=["t02"], key="reviewed", value="no"), by="test", now_ms=1)
        assert run(kept, "SELECT count(*) FROM tags WHERE key = 'reviewed'").rows == [[2]]
    finally:
        kept.release()


def test_connections_open_with_the_configured_memory_limit(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACESIEVE_MEMORY_LIMIT", "300MB")
    monkeypatch.setenv("TRACESIEVE_THREADS", "1")
    memory, threads = settings(DuckDBTraceStore(db_path), "memory_limit", "threads")
    assert memory.replace(" ", "").upper().startswith(("286.1MIB", "300.0MB", "300MB")), memory
    assert threads == 1


def test_connections_draw_no_progress_bar_and_stay_locked(db_path: Path) -> None:
    """The progress bar would draw on the server's stderr; turning it off must not unlock the sandbox."""
    store = DuckDBTraceStore(db_path)
    values = settings(store, "enable_progress_bar", "lock_configuration", "wal_autocheckpoint")
    assert values[:2] == (False, True)
    assert values[2].replace(" ", "") in ("1GB", "953.6MiB"), "commits must not checkpoint every scattered update"
    with pytest.raises(InvalidInputError):
        run(store, "SET enable_progress_bar = true")


def test_a_huge_result_is_cut_at_the_size_cap_with_a_note(store: DuckDBTraceStore) -> None:
    result = run(store, "SELECT i, repeat('x', 100000) AS blob, range(5000) AS xs FROM range(1000) t(i)", limit=1000)
    assert result.truncated is True and 0 < result.row_count < 1000
    assert result.note.startswith(f"Rows stopped at {result.row_count}: the result passed 200,000 characters.")
    assert len(result.model_dump_json()) < 210_000
    assert result.rows[0][1].endswith("…[truncated 98000 chars]")
    assert result.rows[0][2][-1] == "…[truncated 4950 more items]"


@pytest.mark.anyio
async def test_a_slow_query_stops_at_the_time_limit_without_holding_up_other_tools(
        db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import anyio
    from mcp import Client

    from server.mcp.app import build_app

    monkeypatch.setenv("TRACESIEVE_SQL_TIMEOUT_S", "3")
    store = DuckDBTraceStore(db_path, idle_release_s=30)
    slow: dict = {}
    try:
        async with Client(build_app(store)) as attacker, Client(build_app(store)) as other:
            async def run_slow() -> None:
                slow["result"] = await attacker.call_tool(
                    "query_sql", {"sql": "SELECT sum(hash(i)) FROM range(100000000000) t(i)"})

            async with anyio.create_task_group() as group:
                group.start_soon(run_slow)
                await anyio.sleep(0.5)
                found = await other.call_tool("search_traces", {"filter": "attributes.status = 'ERROR'"})
                assert found.structured_content["total_matches"] == 3
                assert "result" not in slow, "the search waited for the slow query"
        assert slow["result"].is_error
        assert "ran longer than 3s and was stopped" in slow["result"].content[0].text
    finally:
        store.release()


def test_a_query_that_would_spill_past_the_cap_gets_a_clear_error(db_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACESIEVE_MEMORY_LIMIT", "64MB")
    monkeypatch.setenv("TRACESIEVE_SPILL_LIMIT", "20MB")
    monkeypatch.setenv("TRACESIEVE_THREADS", "1")
    store = DuckDBTraceStore(db_path)
    with pytest.raises(InvalidInputError) as caught:
        run(store, "SELECT count(DISTINCT h) FROM (SELECT md5(i::VARCHAR) || repeat('y', 50) h FROM range(3000000) t(i))")
    assert str(caught.value).startswith("The query needed more memory (or temporary disk) than the server allows")
    assert "/19.0 MiB used)" in str(caught.value), "the cap (20MB = 19.0 MiB) is what stopped it"
    assert run(store, "SELECT count(*) FROM traces").rows == [[12]], "the store still answers"


def test_a_tool_read_that_runs_out_of_memory_says_which_limits_to_raise(db_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The tools' own reads (profile_traces over a whole store of millions of spans) share the caps;
    running out says which two settings and how to narrow the call, and the store still answers."""
    monkeypatch.setenv("TRACESIEVE_MEMORY_LIMIT", "64MB")
    monkeypatch.setenv("TRACESIEVE_SPILL_LIMIT", "20MB")
    monkeypatch.setenv("TRACESIEVE_THREADS", "1")
    store = DuckDBTraceStore(db_path)
    with pytest.raises(InvalidInputError) as caught, store.reading() as con:
        con.execute("SELECT count(DISTINCT h) FROM (SELECT md5(i::VARCHAR) || repeat('y', 50) h "
                    "FROM range(3000000) t(i))").fetchall()
    message = str(caught.value)
    assert "memory limit (64MB, TRACESIEVE_MEMORY_LIMIT) and temporary disk (20MB, TRACESIEVE_SPILL_LIMIT)" in message
    assert "attributes.timestamp_ms > '-7d'" in message and "/19.0 MiB used)" in message
    assert run(store, "SELECT count(*) FROM traces").rows == [[12]]
