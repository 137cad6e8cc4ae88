"""Every payload of the query_sql attack corpus, through a real MCP client, while a second client
session watches: the attacker gets a clear refusal (or a bounded, harmless answer) and the other
session's reads never change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from mcp import Client

from server.mcp.app import build_app
from server.storage.duckdb.sql_sandbox import MAX_RESULT_CHARS
from server.storage.duckdb.store import DuckDBTraceStore
from tests.attacks.query_sql_payloads import OK, PAYLOADS

pytestmark = pytest.mark.anyio

#: What the watching session reads: matches of filters that compile to lower()/contains(),
#: request previews, and the store overview (the three things the audit saw poisoned).
GLANCE = ("search_traces", {"filter": "attributes.status = 'ERROR' OR text CONTAINS 'refund'", "limit": 5})
WATCH = [
    ("search_traces", {"filter": "attributes.status = 'ERROR'", "limit": 3}),
    ("search_traces", {"filter": "text CONTAINS 'refund'", "limit": 3}),
    ("search_traces", {"filter": "tags.environment ILIKE 'PROD%'", "limit": 2}),
    ("describe_store", {}),
]


async def watch(client: Client, calls: list[tuple[str, dict]] = WATCH) -> list[Any]:
    seen = []
    for tool, args in calls:
        result = await client.call_tool(tool, args)
        assert not result.is_error, result.content
        # the summary names the next page by its token, which carries the clock of page 1
        seen.append({k: v for k, v in result.structured_content.items() if k not in ("next_page_token", "summary")})
    return seen


def test_the_corpus_is_large_and_mostly_hostile() -> None:
    assert len(PAYLOADS) >= 100
    assert len({sql for sql, _ in PAYLOADS}) == len(PAYLOADS), "a payload is listed twice"
    assert sum(expect != OK for _, expect in PAYLOADS) >= 100


async def test_no_payload_changes_what_another_session_sees(db_path: Path, tmp_path: Path) -> None:
    store = DuckDBTraceStore(db_path, idle_release_s=30)  # kept open across calls, as in a server
    app = build_app(store)
    failures = []
    try:
        async with Client(app) as attacker, Client(app) as watcher:
            before, glance = await watch(watcher), await watch(watcher, [GLANCE])
            assert before[0]["total_matches"] == 3 and before[3]["trace_count"] == 12
            assert glance[0]["total_matches"] > 3
            for sql, expect in PAYLOADS:
                result = await attacker.call_tool("query_sql", {"sql": sql, "limit": 1000})
                text = json.dumps(result.structured_content) if not result.is_error else result.content[0].text
                if str(db_path.parent) in text:
                    failures.append(f"{sql!r} showed the store's path")
                if expect == OK:
                    if result.is_error:
                        failures.append(f"{sql!r} was refused: {text}")
                    elif len(text) > MAX_RESULT_CHARS + 10_000:
                        failures.append(f"{sql!r} answered {len(text)} chars")
                elif not result.is_error or expect not in text:
                    failures.append(f"{sql!r}: expected a refusal with {expect!r}, got {text[:300]}")
                if await watch(watcher, [GLANCE]) != glance:
                    failures.append(f"{sql!r} changed what the other session sees")
            if await watch(watcher) != before:
                failures.append("the corpus changed what the other session sees")
    finally:
        store.release()
    assert not failures, "\n".join(failures)
    assert not Path("/tmp/tracesieve-leak.csv").exists()
    con = duckdb.connect(str(db_path), read_only=True)
    assert con.execute("SELECT count(*), count(*) FILTER (WHERE status = 'ERROR') FROM traces").fetchone() == (12, 3)
    con.close()


def test_the_sandboxed_connection_refuses_files_even_without_the_statement_check(db_path: Path) -> None:
    """The second wall: if the policy ever let a file read through, the connection itself refuses."""
    store = DuckDBTraceStore(db_path)
    with store._keeper.sandboxed_cursor(lock_timeout_s=1, idle_release_s=0) as cursor:
        for sql in ("SELECT * FROM read_text('/etc/hostname')", "SET enable_external_access = true",
                    "ATTACH ':memory:' AS m"):
            with pytest.raises(duckdb.Error):
                cursor.execute(sql)


def test_temporary_objects_die_with_the_query_sessions_cursor(db_path: Path) -> None:
    """Even a temp object made on a query_sql cursor (by a payload the policy missed) is gone for
    the next call and was never visible to the store's own reads."""
    store = DuckDBTraceStore(db_path, idle_release_s=30)
    try:
        with store._keeper.sandboxed_cursor(lock_timeout_s=1, idle_release_s=30) as cursor:
            cursor.execute("CREATE TEMP TABLE traces AS SELECT * FROM main.traces LIMIT 0")
            cursor.execute("CREATE TEMP MACRO lower(x) AS 'pwned'")
            with store.reading() as con:
                assert con.execute("SELECT count(*), lower('A') FROM traces").fetchone() == (12, "a")
        with store._keeper.sandboxed_cursor(lock_timeout_s=1, idle_release_s=30) as cursor:
            assert cursor.execute("SELECT count(*), lower('A') FROM traces").fetchone() == (12, "a")
    finally:
        store.release()
