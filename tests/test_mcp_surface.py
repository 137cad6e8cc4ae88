"""The MCP surface beyond tools, through a real client: one copy of each result, toolsets and what
their definitions cost, titles and version, resources and templates, prompts, completions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client
from mcp.types import PromptReference, ResourceTemplateReference

from server.mcp import toolsets
from server.mcp.app import build_app, server_version
from server.storage.duckdb.store import DuckDBTraceStore
from tools.errors import InvalidInputError

pytestmark = pytest.mark.anyio

#: What a host pays per tool on every turn: name, title, description and input schema, as ~chars/4.
DEFAULT_BUDGET_TOKENS = 7_000
#: The thirty tools of the five original toolsets (issue 18's target); the monitors toolset came later
#: and has a budget of its own, so `all` is held to the sum.
ALL_BUDGET_TOKENS = 10_000
MONITORS_BUDGET_TOKENS = 1_400


def definition_tokens(tools) -> int:
    chars = sum(len(json.dumps({"name": t.name, "title": t.title, "description": t.description,
                                "inputSchema": t.input_schema}, separators=(",", ":"))) for t in tools)
    return chars // 4


async def test_a_result_is_sent_once_with_its_summary_first(db_path: Path) -> None:
    async with Client(build_app(DuckDBTraceStore(db_path))) as client:
        result = await client.call_tool("search_traces", {"filter": "attributes.status = 'ERROR'", "limit": 2})
    data = result.structured_content
    assert list(data)[0] == "summary"
    assert data["summary"].startswith("2 traces shown of 3 matching status is 'ERROR'. More: search_traces(page_token='")
    assert [c.text for c in result.content] == [data["summary"]]       # the text is the summary, not the JSON again
    assert all("session_id" not in t for t in data["traces"])          # nulls are left out


async def test_search_fields_project_the_columns_asked_for(db_path: Path) -> None:
    async with Client(build_app(DuckDBTraceStore(db_path))) as client:
        slim = (await client.call_tool("search_traces", {"fields": ["status", "duration_ms"], "limit": 3})
                ).structured_content
        bad = await client.call_tool("search_traces", {"fields": ["stauts"]})
    assert [set(t) for t in slim["traces"]] == [{"trace_id", "status", "duration_ms"}] * 3
    assert bad.is_error and "fields.0" in bad.content[0].text and "'status'" in bad.content[0].text


async def test_default_and_all_toolsets_fit_their_definition_budgets(db_path: Path) -> None:
    store = DuckDBTraceStore(db_path)
    async with Client(build_app(store, toolsets=toolsets.resolve(None))) as client:
        default = (await client.list_tools()).tools
        info = client.server_info
    async with Client(build_app(store)) as client:
        everything = (await client.list_tools()).tools
    async with Client(build_app(store, toolsets=("monitors",))) as client:
        monitors = (await client.list_tools()).tools
    assert {t.name for t in default} >= {"search_traces", "get_trace", "tag_trace", "build_dataset_from_tags"}
    assert "run_judges" not in {t.name for t in default}
    assert definition_tokens(default) <= DEFAULT_BUDGET_TOKENS, definition_tokens(default)
    assert definition_tokens(monitors) <= MONITORS_BUDGET_TOKENS, definition_tokens(monitors)
    assert definition_tokens(everything) - definition_tokens(monitors) <= ALL_BUDGET_TOKENS, \
        definition_tokens(everything)
    assert all(t.title for t in everything) and {t.title for t in everything if t.name == "get_trace"} == {"Read one trace"}
    assert not any("title" in p for t in everything for p in t.input_schema.get("properties", {}).values())
    assert server_version() not in ("", "0+unknown") and info.version == server_version()


async def test_read_only_keeps_only_tools_that_never_write(db_path: Path) -> None:
    async with Client(build_app(DuckDBTraceStore(db_path), toolsets=("traces",), read_only=True)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        refused = await client.call_tool("tag_trace", {"key": "k", "trace_ids": ["t01"]})
    assert names == {"describe_store", "search_traces", "get_trace", "query_sql"}
    assert refused.is_error


def test_toolset_names_resolve_and_a_typo_says_what_exists() -> None:
    assert toolsets.resolve("observe,judge") == ("traces", "analysis", "judges")
    assert toolsets.resolve("all") == tuple(toolsets.TOOLSETS)
    with pytest.raises(InvalidInputError) as caught:
        toolsets.resolve("observe,judgs")
    assert str(caught.value).startswith(
        "Unknown toolset 'judgs'. Did you mean 'judges'? Use a comma-separated list of: all, default, observe")


async def test_resources_templates_and_the_grammar_are_readable(db_path: Path) -> None:
    async with Client(build_app(DuckDBTraceStore(db_path))) as client:
        static = {str(r.uri) for r in (await client.list_resources()).resources}
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        grammar = (await client.read_resource("tracesieve://filter-grammar")).contents[0].text
        trace = json.loads((await client.read_resource("trace://t03")).contents[0].text)
        await client.call_tool("tag_trace", {"key": "eval_candidate", "value": "x", "trace_ids": ["t01", "t02"]})
        await client.call_tool("build_dataset_from_tags", {"name": "golden", "tags": ["eval_candidate=x"]})
        dataset = json.loads((await client.read_resource("dataset://golden@1")).contents[0].text)
        with pytest.raises(Exception, match="No trace with id 'nope'"):
            await client.read_resource("trace://nope")
    assert static == {"tracesieve://filter-grammar"}
    assert templates == {"trace://{trace_id}", "dataset://{name}@{version}"}
    assert "tags.<key>" in grammar and "now() - 7d" in grammar
    assert [s["type"] for s in trace["spans"]] == ["AGENT", "CHAT_MODEL", "TOOL"]
    assert dataset["dataset"]["version"] == 1 and {r["trace_id"] for r in dataset["records"]} == {"t01", "t02"}


async def test_prompts_fill_in_the_workflow_and_arguments_complete_from_the_store(db_path: Path) -> None:
    async with Client(build_app(DuckDBTraceStore(db_path))) as client:
        names = {p.name for p in (await client.list_prompts()).prompts}
        curate = await client.get_prompt("curate_eval_set", {"days": "3", "dataset": "errs"})
        await client.call_tool("tag_trace", {"key": "eval_candidate", "value": "slow_one", "trace_ids": ["t02"]})
        keys = (await client.complete(PromptReference(type="ref/prompt", name="curate_eval_set"),
                                      {"name": "tag_key", "value": "ev"})).completion
        values = (await client.complete(PromptReference(type="ref/prompt", name="curate_eval_set"),
                                        {"name": "tag_value", "value": "s"}, {"tag_key": "eval_candidate"})).completion
        ids = (await client.complete(ResourceTemplateReference(type="ref/resource", uri="trace://{trace_id}"),
                                     {"name": "trace_id", "value": "t1"})).completion
    assert names == {"curate_eval_set", "calibrate_judge", "gate_release"}
    text = curate.messages[0].content.text
    assert "now() - 3d" in text and "build_dataset_from_tags(name='errs'" in text
    assert keys.values == ["eval_candidate"]
    assert values.values == ["slow", "slow_one"]     # t07 is tagged 'slow' in the small set
    assert ids.values == ["t12", "t11", "t10"] and ids.has_more is False


@pytest.mark.filterwarnings("ignore:The logging capability is deprecated")
async def test_each_call_is_logged_to_the_client_at_the_level_it_set(db_path: Path) -> None:
    received: list[tuple[str, dict]] = []

    async def on_log(params) -> None:
        received.append((params.level, params.data))

    async with Client(build_app(DuckDBTraceStore(db_path)), logging_callback=on_log, log_level="info",
                      mode="legacy") as client:
        assert client.server_capabilities.logging is not None
        await client.set_logging_level("info")
        await client.call_tool("search_traces", {"limit": 1})
        await client.set_logging_level("error")
        await client.call_tool("describe_store", {})
    assert [(level, data["tool"]) for level, data in received] == [("info", "search_traces")]
    assert received[0][1]["summary"].startswith("1 traces shown of 12")
