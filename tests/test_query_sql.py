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
    ("SELECT * FROM read_csv('/etc/passwd')", "file system operations are disabled"),
    ("SELECT * FROM read_text('/etc/hostname')", "file system operations are disabled"),
    ("SELECT * FROM 'https://example.com/data.parquet'", "Refused"),
    ("SELECT * FROM read_json_auto('http://127.0.0.1:1/x.json')", "Refused"),
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
        with pytest.raises(InvalidInputError, match="file system operations are disabled"):
            run(kept, "SELECT * FROM read_text('/etc/hostname')")
        assert run(kept, "SELECT value FROM tags WHERE trace_id = 't01' AND key = 'reviewed'").rows == [["yes"]]
        tag_trace(kept, TagTraceInput(trace_ids=["t02"], key="reviewed", value="no"), by="test", now_ms=1)
        assert run(kept, "SELECT count(*) FROM tags WHERE key = 'reviewed'").rows == [[2]]
    finally:
        kept.release()


def test_connections_open_with_the_configured_memory_limit(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACESIEVE_MEMORY_LIMIT", "300MB")
    monkeypatch.setenv("TRACESIEVE_THREADS", "1")
    result = run(DuckDBTraceStore(db_path), "SELECT current_setting('memory_limit'), current_setting('threads')")
    memory, threads = result.rows[0]
    assert memory.replace(" ", "").upper().startswith(("286.1MIB", "300.0MB", "300MB")), memory
    assert threads == 1


def test_connections_draw_no_progress_bar_and_stay_locked(db_path: Path) -> None:
    """The progress bar would draw on the server's stderr; turning it off must not unlock the sandbox."""
    store = DuckDBTraceStore(db_path)
    result = run(store, "SELECT current_setting('enable_progress_bar'), current_setting('lock_configuration'), "
                        "current_setting('wal_autocheckpoint')")
    assert result.rows[0][:2] == [False, True]
    assert result.rows[0][2].replace(" ", "") in ("1GB", "953.6MiB"), "commits must not checkpoint every scattered update"
    with pytest.raises(InvalidInputError):
        run(store, "SET enable_progress_bar = true")
