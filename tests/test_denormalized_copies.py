"""``traces.tags`` and ``spans.trace_timestamp_ms`` are copies that searches read instead of
joining: after every kind of write, and after an older store is migrated, they must equal what
the ``tags`` and ``traces`` tables say."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from server.storage.duckdb.store import DuckDBTraceStore
from server.storage.duckdb.filter_sql import compile_filter, json_pointer
from server.storage.duckdb.schema import MIGRATIONS
from tests.factory import small_set, trace
from tools.filters.parser import parse
from tools.traces.search import SearchTracesInput, search_traces


def tag_copies(path: Path) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    """(tags per trace from ``traces.tags``, tags per trace from the ``tags`` table)."""
    with duckdb.connect(str(path), read_only=True) as con:
        copies = {tid: json.loads(doc) for tid, doc in con.execute("SELECT trace_id, tags FROM traces").fetchall()}
        record: dict[str, dict[str, str]] = {tid: {} for tid in copies}
        for tid, key, value in con.execute("SELECT trace_id, key, value FROM tags").fetchall():
            record[tid][key] = value
    return copies, record


def stale_span_timestamps(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("""SELECT count(*) FROM spans s JOIN traces t USING (trace_id)
                              WHERE s.trace_timestamp_ms IS DISTINCT FROM t.timestamp_ms""").fetchone()[0]


def unified_tags_off_record(path: Path) -> list[tuple]:
    """Traces whose ``trace_unified.tags`` (read from the copy) differ from the map the view built
    from the ``tags`` table before migration 7: NULL without tags, keys sorted."""
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("""
            SELECT u.trace_id, map_entries(u.tags) FROM trace_unified u
            WHERE map_entries(u.tags) IS DISTINCT FROM map_entries((
                SELECT map(list(g.key ORDER BY g.key), list(g.value ORDER BY g.key))
                FROM tags g WHERE g.trace_id = u.trace_id))""").fetchall()


def assert_in_step(store: DuckDBTraceStore) -> dict[str, dict[str, str]]:
    store.release()
    copies, record = tag_copies(store.path)
    assert copies == record
    assert stale_span_timestamps(store.path) == 0
    assert unified_tags_off_record(store.path) == []
    return copies


def test_every_tag_write_keeps_the_copy_in_step(store: DuckDBTraceStore) -> None:
    tags = assert_in_step(store)
    assert tags["t07"] == {"environment": "production", "eval_candidate": "slow"}, "ingested tags are copied"

    store.set_tag(trace_ids=["t01", "t02"], expr=None, key="review", value="needed", by="t", now_ms=1)
    store.set_tag(trace_ids=None, expr=parse("attributes.status = 'ERROR'"), key="review", value="urgent",
                  by="t", now_ms=2)
    change = store.set_tag(trace_ids=["t02"], expr=None, key="review", value="urgent", by="t", now_ms=3)
    assert change.changed == 0
    tags = assert_in_step(store)
    assert tags["t01"]["review"] == "needed" and tags["t02"]["review"] == "urgent"
    assert "review" not in tags["t03"]

    store.remove_tag(trace_ids=None, expr=parse("tags.review = 'urgent'"), key="review", by="t", now_ms=4)
    store.remove_tag(trace_ids=["t01"], expr=None, key="environment", by="t", now_ms=5)
    tags = assert_in_step(store)
    assert tags["t01"] == {"review": "needed"}
    assert all("review" not in tags[t] for t in ("t02", "t05", "t09"))


def test_reingest_keeps_set_tags_and_moves_span_timestamps(store: DuckDBTraceStore) -> None:
    store.set_tag(trace_ids=["t04"], expr=None, key="review", value="needed", by="t", now_ms=1)
    store.write_traces([trace("t04", 500, env="production", tags={"environment": "production", "new": "yes"})])
    tags = assert_in_step(store)
    assert tags["t04"] == {"environment": "production", "new": "yes", "review": "needed"}
    with duckdb.connect(str(store.path), read_only=True) as con:
        moved = con.execute("SELECT DISTINCT trace_timestamp_ms FROM spans WHERE trace_id = 't04'").fetchall()
    assert moved == [(trace("t04", 500).timestamp_ms,)]


def test_search_results_carry_the_tags_of_the_record(store: DuckDBTraceStore) -> None:
    store.set_tag(trace_ids=["t07"], expr=None, key="review", value='needs "care"', by="t", now_ms=1)
    result = search_traces(store, SearchTracesInput(filter="tags.review = 'needs \"care\"'"), now_ms=10**13)
    assert [(t.trace_id, t.tags) for t in result.traces] == [
        ("t07", {"environment": "production", "eval_candidate": "slow", "review": 'needs "care"'})]


def test_a_failed_tag_write_changes_neither_copy(store: DuckDBTraceStore) -> None:
    before = assert_in_step(store)
    with pytest.raises(Exception):
        with store.transaction() as con:
            con.execute("UPDATE traces SET tags = '{\"half\":\"written\"}' WHERE trace_id = 't01'")
            con.execute("SELECT no_such_column FROM traces")
    assert assert_in_step(store) == before


def test_a_schema_5_store_is_migrated_with_both_copies_filled(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    current = DuckDBTraceStore(tmp_path / "current.duckdb")
    current.write_traces(small_set())
    current.release()
    with duckdb.connect(str(path)) as con:   # an old store: schema 5, rows as version 5 wrote them
        con.execute("CREATE TABLE schema_version (version INTEGER, applied_at_ms BIGINT)")
        for version, sql in enumerate(MIGRATIONS[:5], start=1):
            con.execute(sql)
            con.execute("INSERT INTO schema_version VALUES ($v, 0)", {"v": version})
        con.execute(f"ATTACH '{current.path}' AS cur (READ_ONLY)")
        con.execute("INSERT INTO traces SELECT * EXCLUDE (tags) FROM cur.traces")
        con.execute("INSERT INTO spans SELECT * EXCLUDE (trace_timestamp_ms) FROM cur.spans")
        con.execute("INSERT INTO tags SELECT * FROM cur.tags")
    store = DuckDBTraceStore(path)
    assert store.schema_version() == len(MIGRATIONS)
    tags = assert_in_step(store)
    assert tags == tag_copies(current.path)[0] and tags["t07"]["eval_candidate"] == "slow"
    found = search_traces(store, SearchTracesInput(filter="tags.eval_candidate = 'slow' AND span.type = 'TOOL'"),
                          now_ms=10**13)
    assert [t.trace_id for t in found.traces] == ["t07"]


def test_tag_values_that_need_json_escapes_round_trip_through_tag_writes(store: DuckDBTraceStore) -> None:
    odd_key, odd_value = 'we"ird\\key/ü', 'q"u\\o/t\u00e9\n\x01 🚀'
    store.set_tag(trace_ids=["t03"], expr=None, key=odd_key, value=odd_value, by="t", now_ms=1)
    assert_in_step(store)
    found = search_traces(store, SearchTracesInput(filter=f"tags.`{odd_key}` IS NOT NULL"), now_ms=10**13)
    assert [(t.trace_id, t.tags[odd_key]) for t in found.traces] == [("t03", odd_value)]
    with duckdb.connect(str(store.path), read_only=True) as con:
        where, params = compile_filter(parse("tags.x = 'y'"), now_ms=0)
        params = {"p0": odd_key, "p1": json_pointer(odd_key), "p2": odd_value, "p3": odd_value}
        assert con.execute(f"SELECT trace_id FROM traces t WHERE {where}", params).fetchall() == [("t03",)]
    store.remove_tag(trace_ids=["t03"], expr=None, key=odd_key, by="t", now_ms=2)
    assert odd_key not in assert_in_step(store)["t03"]


def test_a_tag_row_written_behind_the_copys_back_is_replaced_not_duplicated(store: DuckDBTraceStore) -> None:
    """The copy decides what changed, but the table is cleaned by key, so a row someone inserted
    with SQL (invisible to the copy) cannot end up twice."""
    with store.transaction() as con:
        con.execute("INSERT INTO tags VALUES ('t05', 'review', 'stale', 0, 'sql')")
    store.set_tag(trace_ids=["t05"], expr=None, key="review", value="done", by="t", now_ms=1)
    with store.reading() as con:
        assert con.execute("SELECT value FROM tags WHERE trace_id = 't05' AND key = 'review'").fetchall() == [("done",)]
    assert assert_in_step(store)["t05"]["review"] == "done"


def test_trace_unified_shows_the_current_tags_sorted_and_null_without_tags(tmp_path: Path) -> None:
    store = DuckDBTraceStore(tmp_path / "u.duckdb")
    store.write_traces([trace("plain", 1, tags={}), trace("tagged", 2, tags={"zeta": "1"})])
    store.set_tag(trace_ids=["tagged"], expr=None, key="alpha", value='say "hi"', by="t", now_ms=1)
    store.set_tag(trace_ids=["plain"], expr=None, key="gone", value="soon", by="t", now_ms=2)
    store.remove_tag(trace_ids=["plain"], expr=None, key="gone", by="t", now_ms=3)
    assert_in_step(store)
    with duckdb.connect(str(store.path), read_only=True) as con:
        rows = con.execute("SELECT trace_id, map_keys(tags), tags['alpha'] FROM trace_unified ORDER BY 1").fetchall()
    assert rows == [("plain", None, None), ("tagged", ["alpha", "zeta"], 'say "hi"')]
