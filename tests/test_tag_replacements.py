"""tag_trace says which traces had another value of the key and what it was, through the real
client, and stays bounded however many traces or ids a call touches."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from server.mcp.app import build_app
from server.storage.duckdb.store import DuckDBTraceStore
from tests.factory import trace

pytestmark = pytest.mark.anyio


async def test_overwriting_another_agents_value_is_reported_with_the_value_and_the_traces(db_path: Path) -> None:
    app = build_app(DuckDBTraceStore(db_path))
    async with Client(app) as curator, Client(app) as other:
        first = await curator.call_tool("tag_trace", {"key": "eval_candidate", "value": "error_case",
                                                      "trace_ids": ["t01", "t02", "t03"]})
        assert first.structured_content["replaced"] == 0 and first.structured_content["previous_values"] == []
        moved = (await other.call_tool("tag_trace", {"key": "eval_candidate", "value": "regression",
                                                     "filter": "attributes.status = 'ERROR'"})).structured_content
    assert (moved["matched"], moved["changed"], moved["replaced"]) == (3, 3, 1)
    assert moved["previous_values"] == [{"value": "error_case", "traces": 1, "example_trace_ids": ["t02"]}]


async def test_untag_reports_the_values_it_removed(db_path: Path) -> None:
    async with Client(build_app(DuckDBTraceStore(db_path))) as client:
        removed = (await client.call_tool("untag_trace", {"key": "environment",
                                                          "filter": "tags.environment IS NOT NULL"})).structured_content
    assert (removed["changed"], removed["replaced"]) == (12, 12)
    assert [(p["value"], p["traces"], p["example_trace_ids"]) for p in removed["previous_values"]] == [
        ("production", 8, ["t01", "t02", "t03"]), ("staging", 4, ["t04", "t05", "t09"])]


async def test_a_huge_call_answers_with_counts_and_a_few_examples(tmp_path: Path) -> None:
    store = DuckDBTraceStore(tmp_path / "big.duckdb")
    store.write_traces([trace(f"b{i:04d}", i % 600, tags={"bucket": f"v{i % 12}"}) for i in range(3000)])
    async with Client(build_app(store)) as client:
        moved = (await client.call_tool("tag_trace", {"key": "bucket", "value": "all",
                                                      "filter": "tags.bucket IS NOT NULL"})).structured_content
        ghosts = (await client.call_tool("tag_trace", {"key": "bucket", "value": "x",
                                                       "trace_ids": [f"nope-{i}" for i in range(10_000)]}))
    assert (moved["matched"], moved["replaced"], len(moved["previous_values"])) == (3000, 3000, 10)
    assert all(p["traces"] == 250 and len(p["example_trace_ids"]) == 3 for p in moved["previous_values"])
    ghost = ghosts.structured_content
    assert (ghost["matched"], ghost["unknown_count"], len(ghost["unknown_ids"])) == (0, 10_000, 20)
    assert len(ghosts.content[0].text) < 5_000
