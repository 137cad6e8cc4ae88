"""The MCP surface through the real client (in-process): schemas, annotations, happy and error paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from server.mcp.app import build_app
from server.storage.duckdb.store import DuckDBTraceStore

pytestmark = pytest.mark.anyio

EXPECTED_TOOLS = {"describe_store", "search_traces", "get_trace", "tag_trace", "untag_trace", "query_sql"}


def client_for(db_path: Path) -> Client:
    return Client(build_app(DuckDBTraceStore(db_path)))


def error_text(result) -> str:
    assert result.is_error
    return "\n".join(c.text for c in result.content)


async def test_every_tool_is_listed_with_annotations_and_described_parameters(db_path: Path) -> None:
    async with client_for(db_path) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        instructions = client.instructions
    assert EXPECTED_TOOLS <= set(tools)
    assert "describe_store" in instructions and "search_traces" in instructions
    for tool in tools.values():
        assert tool.annotations is not None and tool.annotations.read_only_hint is not None, tool.name
        assert tool.output_schema, f"{tool.name} has no structured output schema"
        assert len(tool.description or "") > 80, tool.name
        for name, prop in tool.input_schema.get("properties", {}).items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"
    assert tools["search_traces"].annotations.read_only_hint is True
    assert tools["tag_trace"].annotations.idempotent_hint is True
    assert tools["tag_trace"].annotations.read_only_hint is False
    assert tools["untag_trace"].annotations.destructive_hint is True


async def test_an_agent_goes_from_describe_to_tagged_traces(db_path: Path) -> None:
    async with client_for(db_path) as client:
        described = (await client.call_tool("describe_store", {})).structured_content
        assert described["trace_count"] == 12
        assert {"value": "staging", "traces": 4} in described["environments"]
        assert any(f["field"] == "span.type" for f in described["filter_fields"])

        found = (await client.call_tool("search_traces", {
            "filter": "attributes.status = 'ERROR' AND tags.environment = 'production'"})).structured_content
        assert [t["trace_id"] for t in found["traces"]] == ["t02"]
        assert found["traces"][0]["request_preview"] == "Where is my order?"

        tagged = (await client.call_tool("tag_trace", {
            "key": "eval_candidate", "value": "error_case", "trace_ids": ["t02", "missing"]})).structured_content
        assert (tagged["changed"], tagged["unknown_ids"]) == (1, ["missing"])

        curated = (await client.call_tool("search_traces", {
            "filter": "tags.eval_candidate IS NOT NULL"})).structured_content
        assert {t["trace_id"] for t in curated["traces"]} == {"t02", "t07"}

        read = (await client.call_tool("get_trace", {"trace_id": "t02"})).structured_content
        assert read["trace"]["tags"]["eval_candidate"] == "error_case"


async def test_pages_walk_every_match_once(db_path: Path) -> None:
    seen: list[str] = []
    token = None
    async with client_for(db_path) as client:
        while True:
            args = {"limit": 5, "order_by": ["attributes.execution_time_ms DESC"]}
            if token:
                args["page_token"] = token
            page = (await client.call_tool("search_traces", args)).structured_content
            assert page["total_matches"] == 12
            seen += [t["trace_id"] for t in page["traces"]]
            token = page["next_page_token"]
            if not token:
                break
    assert len(seen) == 12 and len(set(seen)) == 12
    assert seen[0] == "t02"


async def test_a_misspelt_field_gets_a_suggestion(db_path: Path) -> None:
    async with client_for(db_path) as client:
        text = error_text(await client.call_tool("search_traces", {"filter": "attributes.stauts = 'OK'"}))
    assert "Unknown field 'attributes.stauts' at position 0. Did you mean 'attributes.status'?" in text
    assert "^^^^^^^^^^^^^^^^^" in text


async def test_a_page_token_from_another_search_is_refused(db_path: Path) -> None:
    async with client_for(db_path) as client:
        page = (await client.call_tool("search_traces", {"limit": 2})).structured_content
        text = error_text(await client.call_tool("search_traces", {
            "limit": 2, "filter": "attributes.status = 'OK'", "page_token": page["next_page_token"]}))
    assert "page_token belongs to a search with a different filter" in text


async def test_unknown_trace_and_bad_arguments_are_readable_errors(db_path: Path) -> None:
    async with client_for(db_path) as client:
        missing = error_text(await client.call_tool("get_trace", {"trace_id": "t99"}))
        both = error_text(await client.call_tool("tag_trace", {"key": "k", "trace_ids": ["t01"],
                                                                "filter": "attributes.status = 'OK'"}))
        write = error_text(await client.call_tool("query_sql", {"sql": "DROP TABLE traces"}))
        limit = error_text(await client.call_tool("search_traces", {"limit": 5000}))
    assert "No trace with id 't99'. Did you mean" in missing
    assert "give exactly one of trace_ids" in both
    assert "query_sql is read-only: DROP statements are refused" in write
    assert "limit" in limit and "200" in limit


async def test_a_search_that_matches_nothing_says_so_plainly(db_path: Path) -> None:
    async with client_for(db_path) as client:
        page = (await client.call_tool("search_traces", {"filter": "attributes.status = 'IN_PROGRESS'"})
                ).structured_content
    assert (page["traces"], page["total_matches"], page["next_page_token"]) == ([], 0, None)
    assert page["filter_explained"] == "status is 'IN_PROGRESS'"


async def test_an_unknown_argument_is_refused_instead_of_silently_dropped(db_path: Path) -> None:
    async with client_for(db_path) as client:
        mlflow_style = error_text(await client.call_tool("search_traces", {
            "filter_string": "attributes.status = 'ERROR'", "max_results": 5}))
        typo = error_text(await client.call_tool("tag_trace", {"key": "k", "trace_id": "t01"}))
        tags_before = (await client.call_tool("search_traces", {"filter": "tags.k IS NOT NULL"})).structured_content
    assert mlflow_style.endswith(
        "search_traces has no argument 'filter_string' (did you mean 'filter'?), 'max_results' (did you mean "
        "'limit'?). Nothing was done. Its arguments are: fields, filter, limit, order_by, page_token.")
    assert "tag_trace has no argument 'trace_id' (did you mean 'trace_ids'?)" in typo
    assert tags_before["total_matches"] == 0
