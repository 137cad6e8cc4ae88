"""Two tracesieve HTTP servers on one ClickHouse store and one PostgreSQL control plane, each driven
by its own MCP client at the same time, tagging, labelling and building versions of one dataset:
nothing is lost and no version mixes two writers' records.

A real ClickHouse server is used when ``CLICKHOUSE_URL`` is set. Without one the two servers share
this process's chdb engine (chdb runs one folder per process, so two *processes* cannot share a chdb
store): each server is its own backend, app, HTTP listener and control-plane connection pool, and
they meet only in the store and in PostgreSQL, as two processes would.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import anyio
import pytest
from mcp import Client

from server.http.transport import http_app
from server.mcp.app import build_app
from server.storage.backend import Backend
from server.storage.factory import StoreUrl, build_backend, parse_store_url
from tests.factory import small_set
from tests.live_server import serving
from tools import clock
from tools.traces.search import SearchTracesInput, search_traces

pytestmark = pytest.mark.anyio
AGENTS = ("ana", "bo")
ROUNDS = 3


@pytest.fixture(params=["chdb", "clickhouse"])
def shared_url(request: pytest.FixtureRequest, chdb_folder: Path, postgres_server) -> Iterator[StoreUrl]:  # type: ignore[no-untyped-def]
    database = f"t_{uuid.uuid4().hex[:12]}"
    if request.param == "clickhouse":
        if not os.environ.get("CLICKHOUSE_URL"):
            pytest.skip("no ClickHouse server: set CLICKHOUSE_URL=clickhouse://USER:PASS@HOST:8123/DB to run "
                        "two servers against one")
        url = replace(parse_store_url(os.environ["CLICKHOUSE_URL"]), database=database)
    else:
        url = StoreUrl("chdb", path=chdb_folder, database=database)
    yield replace(url, control=postgres_server.new_database())


async def _call(client: Client, tool: str, args: dict) -> dict:
    """A tool call, repeated while it reports the 'another client wrote it a moment ago' conflict
    (what an agent is told to do); any other error fails the test."""
    for _ in range(20):
        result = await client.call_tool(tool, args)
        if not result.is_error:
            return result.structured_content
        text = result.content[0].text
        assert "Repeat the call" in text, text
    raise AssertionError(f"{tool} kept conflicting")


async def _agent(url: str, who: str, trace_ids: list[str], built: list[tuple[str, int, list[str]]]) -> None:
    async with Client(f"{url}/mcp") as client:
        for i, trace_id in enumerate(trace_ids):
            await _call(client, "tag_trace", {"key": f"round_{who}", "value": str(i % ROUNDS), "trace_ids": [trace_id]})
            await _call(client, "label_trace", {"trace_id": trace_id, "criterion": f"ok_{who}",
                                                "value": "pass" if i % 2 else "fail", "reviewer": who})
        for n in range(ROUNDS):
            out = await _call(client, "build_dataset_from_tags", {
                "name": "shared", "tags": [f"round_{who}={n}"], "new_version": True, "redact": False})
            expected = sorted(t for i, t in enumerate(trace_ids) if i % ROUNDS == n)
            built.append((who, out["version"], expected))


async def test_two_servers_tag_label_and_version_one_dataset_at_once(shared_url: StoreUrl) -> None:
    servers: list[Backend] = [build_backend(shared_url) for _ in AGENTS]
    servers[0].traces.write_traces(small_set())
    trace_ids = sorted(t.trace_id for t in small_set())
    built: list[tuple[str, int, list[str]]] = []
    apps = [http_app(build_app(backend), host="127.0.0.1", token=None) for backend in servers]
    with serving(apps[0]) as url_a, serving(apps[1]) as url_b:
        async with anyio.create_task_group() as group:
            for url, who in zip((url_a, url_b), AGENTS):
                group.start_soon(_agent, url, who, trace_ids, built)

    reader = build_backend(shared_url)   # a third server, opened afterwards
    for who in AGENTS:
        for n in range(ROUNDS):
            found = search_traces(reader.traces, SearchTracesInput(filter=f"tags.round_{who} = '{n}'", limit=50),
                                  now_ms=clock.now_ms())
            assert sorted(t.trace_id for t in found.traces) == [t for i, t in enumerate(trace_ids) if i % ROUNDS == n]
        labels = reader.features.labels.list_labels(criterion=f"ok_{who}", trace_ids=None, reviewer=None,
                                                    include_history=True, limit=100, after=None)
        assert sorted(label.trace_id for label in labels.rows) == trace_ids   # 12 labels each, none lost
    versions = reader.features.datasets.versions("shared")
    assert sorted(v.version for v in versions) == list(range(1, 2 * ROUNDS + 1))   # six versions, no gap, no merge
    assert sorted(version for _, version, _ in built) == list(range(1, 2 * ROUNDS + 1))
    for who, version, expected in built:
        records = reader.features.datasets.records("shared", version)
        assert sorted(r.trace_id for r in records) == expected, (who, version)
