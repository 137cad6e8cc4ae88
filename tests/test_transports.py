"""Real server processes: stdio, streamable HTTP (with and without a token), and two servers on one store."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import duckdb
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from tests.live_server import stop_process

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[1]


def stdio_params(db: Path, idle_release_ms: int = 0) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "server", "serve", "--db", str(db)],
                                 cwd=str(REPO), env={**os.environ, "TRACESIEVE_LOCK_TIMEOUT": "30",
                                                     "TRACESIEVE_IDLE_RELEASE_MS": str(idle_release_ms)})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_http(db: Path, *extra: str, env: dict | None = None) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "server", "serve", "--db", str(db), "--http", "--port", str(port),
                             *extra], cwd=REPO, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("HTTP server did not start")


async def test_stdio_server_serves_the_whole_workflow(db_path: Path) -> None:
    async with Client(stdio_params(db_path)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"describe_store", "search_traces", "get_trace", "tag_trace"} <= names
        found = (await client.call_tool("search_traces", {"filter": "span.type = 'TOOL' AND span.status = 'ERROR'"}))
        ids = sorted(t["trace_id"] for t in found.structured_content["traces"])
        assert ids == ["t03", "t09"]
        tagged = (await client.call_tool("tag_trace", {"key": "eval_candidate", "value": "tool_error",
                                                       "trace_ids": ids})).structured_content
        assert tagged["changed"] == 2
    con = duckdb.connect(str(db_path), read_only=True)  # the server released the file
    assert con.execute("SELECT count(*) FROM tags WHERE key = 'eval_candidate' AND value = 'tool_error'"
                       ).fetchone()[0] == 2
    con.close()


async def test_http_on_loopback_works_without_a_token(db_path: Path) -> None:
    proc, port = start_http(db_path)
    try:
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            result = await client.call_tool("describe_store", {})
        assert result.structured_content["trace_count"] == 12
    finally:
        stop_process(proc)


async def test_http_with_a_token_rejects_requests_without_it(db_path: Path) -> None:
    proc, port = start_http(db_path, env={"TRACESIEVE_TOKEN": "s3cret-token"})
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        async with httpx2.AsyncClient() as raw:
            denied = await raw.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
            wrong = await raw.post(url, json={}, headers={"Authorization": "Bearer nope"})
        assert denied.status_code == 401 and wrong.status_code == 401
        assert "bearer token" in denied.text
        authed = httpx2.AsyncClient(headers={"Authorization": "Bearer s3cret-token"})
        async with authed, Client(streamable_http_client(url, http_client=authed)) as client:
            result = await client.call_tool("search_traces", {"filter": "attributes.status = 'ERROR'"})
        assert result.structured_content["total_matches"] == 3
    finally:
        stop_process(proc)


def test_http_refuses_a_public_bind_without_a_token(db_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TRACESIEVE_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "server", "serve", "--db", str(db_path), "--http",
                           "--host", "0.0.0.0", "--port", str(free_port())], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Refusing to serve on 0.0.0.0 without authentication" in done.stderr
    assert "--token" in done.stderr


async def test_two_servers_on_one_store_search_and_tag_at_once_without_losing_writes(db_path: Path) -> None:
    rounds = 15
    results: dict[str, list[int]] = {}

    async def agent(name: str) -> None:
        # Each server keeps the file for a burst (as in production) and must still let the other in.
        async with Client(stdio_params(db_path, idle_release_ms=100)) as client:
            totals = []
            for i in range(rounds):
                page = (await client.call_tool("search_traces", {"limit": 3})).structured_content
                totals.append(page["total_matches"])
                tag = await client.call_tool("tag_trace", {"key": f"{name}_{i}", "value": name,
                                                           "trace_ids": ["t01", "t05"]})
                assert not tag.is_error, tag.content
                assert tag.structured_content["changed"] == 2
            results[name] = totals

    async with anyio.create_task_group() as tg:
        tg.start_soon(agent, "alpha")
        tg.start_soon(agent, "beta")

    assert results["alpha"] == results["beta"] == [12] * rounds
    con = duckdb.connect(str(db_path), read_only=True)
    written = con.execute("SELECT count(*) FROM tags WHERE key LIKE 'alpha_%' OR key LIKE 'beta_%'").fetchone()[0]
    history = con.execute("SELECT count(*) FROM tag_history WHERE key LIKE 'alpha_%' OR key LIKE 'beta_%'"
                          ).fetchone()[0]
    con.close()
    assert written == history == 2 * rounds * 2
