"""Every dataset MCP tool through a real in-process MCP client, on every engine (chdb included).

The loop an agent runs: build from tags with stratified sampling, page through, attach
expectations, merge records, diff, export to the exports folder and re-import, list; and the
errors a bad call gets, with nothing written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from server.mcp.app import build_app
from server.storage.backend import Backend
from tests.contract.datasets_support import raw_records_text
from tests.factory import trace

pytestmark = pytest.mark.anyio

DATASET_TOOLS = {"build_dataset_from_tags", "list_datasets", "get_dataset", "diff_datasets", "merge_records",
                 "set_expectations", "export_dataset", "import_dataset"}
SECRET = "ghp_SEEDEDabcdefghijklmnopqrstuvwxyz0123456"


@pytest.fixture
def mixed(feature_backend: Backend) -> Backend:
    """120 more tagged traces (30 ERROR / 90 OK, two tool paths) and one carrying seeded secrets."""
    traces = [trace(f"m{i:03d}", 20 + i, status="ERROR" if i % 4 == 0 else "OK",
                    tool="refund" if i % 3 == 0 else "lookup_order", question=f"Question number {i}?",
                    tags={"mix": "error_case" if i % 4 == 0 else "edge_case"}) for i in range(120)]
    traces.append(trace("leaky", 200, tags={"mix": "pii"},
                        question=f"token {SECRET}, I am at maria.g@example.com, card 5555555555554444"))
    feature_backend.traces.write_traces(traces)
    return feature_backend


async def call(c: Client, tool: str, args: dict) -> dict:
    result = await c.call_tool(tool, args)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def error(c: Client, tool: str, args: dict) -> str:
    result = await c.call_tool(tool, args)
    assert result.is_error
    return result.content[0].text


async def test_every_dataset_tool_is_listed_with_fitting_annotations(feature_backend: Backend) -> None:
    async with Client(build_app(feature_backend)) as c:
        tools = {t.name: t for t in (await c.list_tools()).tools}
    assert DATASET_TOOLS <= set(tools)
    for name in DATASET_TOOLS:
        tool = tools[name]
        assert tool.output_schema and len(tool.description or "") > 80, name
        assert all(p.get("description") for p in tool.input_schema.get("properties", {}).values()), name
    for name in ("list_datasets", "get_dataset", "diff_datasets"):
        assert tools[name].annotations.read_only_hint is True
    for name in DATASET_TOOLS - {"list_datasets", "get_dataset", "diff_datasets"}:
        a = tools[name].annotations
        assert (a.read_only_hint, a.destructive_hint, a.idempotent_hint) == (False, False, True), name


async def test_an_agent_builds_reads_edits_diffs_exports_and_reimports_a_dataset(mixed: Backend) -> None:
    async with Client(build_app(mixed)) as c:
        assert DATASET_TOOLS <= {t.name for t in (await c.list_tools()).tools}
        built = await call(c, "build_dataset_from_tags", {
            "name": "support", "tags": ["mix=error_case", "mix=edge_case"],
            "sample": {"n": 40, "seed": 7, "stratify_by": ["status"]}, "description": "weekly mix"})
        assert (built["version"], built["record_count"], built["selected"]) == (1, 40, 120)
        assert {s["stratum"]: (s["population"], s["sampled"]) for s in built["strata"]} == {
            "status=ERROR": (30, 10), "status=OK": (90, 30)}
        again = await call(c, "build_dataset_from_tags", {
            "name": "support", "tags": ["mix=error_case", "mix=edge_case"],
            "sample": {"n": 40, "seed": 7, "stratify_by": ["status"]}})
        assert (again["version"], again["created"]) == (1, False)

        page = await call(c, "get_dataset", {"name": "support", "limit": 15})
        assert len(page["records"]) == 15 and page["next_offset"] == 15
        first = page["records"][0]["record_id"]
        edited = await call(c, "set_expectations", {"name": "support", "record_ids": [first],
                                                     "expectations": {"expected_response": "Refund sent."}})
        merged = await call(c, "merge_records", {"name": "support", "records": [
            {"record_id": first, "expectations": {"expected_facts": ["refund"]}}]})
        assert (edited["version"], merged["version"]) == (2, 3)
        assert (await call(c, "get_dataset", {"name": "support@1", "limit": 15}))["records"] == page["records"]
        diff = await call(c, "diff_datasets", {"name": "support", "a": 1})
        assert (diff["changed_count"], diff["added_count"], diff["removed_count"]) == (1, 0, 0)
        assert diff["changed"][0]["expectation_keys"] == ["expected_facts", "expected_response"]

        exported = await call(c, "export_dataset", {"name": "support@3"})
        assert Path(exported["path"]).name == "support@v3.jsonl" and Path(exported["path"]).is_file()
        imported = await call(c, "import_dataset", {"name": "support_copy", "file": "support@v3.jsonl"})
        assert imported["content_hash"] == merged["content_hash"] and imported["record_count"] == 40
        listed = await call(c, "list_datasets", {})
        assert {(d["name"], d["latest_version"]) for d in listed["datasets"]} == {("support", 3), ("support_copy", 1)}
        resource = await c.read_resource("dataset://support@3")
        assert json.loads(resource.contents[0].text)["dataset"]["version"] == 3


async def test_equal_allocation_gives_the_same_count_per_stratum(mixed: Backend) -> None:
    async with Client(build_app(mixed)) as c:
        built = await call(c, "build_dataset_from_tags", {
            "name": "by_tool", "tags": ["mix=error_case", "mix=edge_case"],
            "sample": {"n": 20, "stratify_by": ["tool_path"], "allocation": "equal"}})
    assert {s["stratum"]: s["sampled"] for s in built["strata"]} == {
        "tool_path=lookup_order": 10, "tool_path=refund": 10}


async def test_a_seeded_secret_never_reaches_a_record(mixed: Backend) -> None:
    async with Client(build_app(mixed)) as c:
        built = await call(c, "build_dataset_from_tags", {"name": "pii", "tags": ["mix=pii"]})
        page = await call(c, "get_dataset", {"name": "pii"})
    assert built["redaction"]["counts"] == {"CARD": 1, "EMAIL": 1, "SECRET": 1}
    text = json.dumps(page)
    assert SECRET not in text and "maria.g@example.com" not in text and "5555555555554444" not in text
    assert "token <SECRET_1>, I am at <EMAIL_1>, card <CARD_1>" in text
    stored = raw_records_text(mixed)
    assert "<SECRET_1>" in stored and SECRET not in stored and "maria.g@example.com" not in stored


async def test_bad_calls_get_readable_errors_and_write_nothing(mixed: Backend) -> None:
    async with Client(build_app(mixed)) as c:
        await call(c, "build_dataset_from_tags", {"name": "errs", "tags": ["mix=error_case"]})
        messages = [
            await error(c, "build_dataset_from_tags", {"name": "x", "tags": ["mx"]}),
            await error(c, "build_dataset_from_tags", {"name": "errs", "tags": ["mix"]}),
            await error(c, "get_dataset", {"name": "ers"}),
            await error(c, "get_dataset", {"name": "errs", "version": 9}),
            await error(c, "import_dataset", {"name": "stolen", "file": "../secrets.jsonl"}),
            await error(c, "import_dataset", {"name": "stolen", "file": "/etc/passwd"}),
            await error(c, "merge_records", {"name": "errs", "records": [{"record_id": "zzz"}]}),
            await error(c, "diff_datasets", {"name": "errs"}),
            await error(c, "build_dataset_from_tags", {"name": "x", "tags": ["mix"], "sample": {"n": 0}}),
            await error(c, "build_dataset_from_tags", {"name": "x", "tags": ["mix"],
                                                       "sample": {"n": 5, "allocation": "optimal"}}),
            await error(c, "build_dataset_from_tags", {"name": "x", "tags": ["mix"],
                                                       "sample": {"n": 5, "stratify_by": ["latency"]}}),
            await error(c, "build_dataset_from_tags", {"name": "x"}),
            await error(c, "build_dataset_from_tags", {"name": "x", "filter": "attributes.status = 'IN_PROGRESS'"}),
        ]
        listed = await call(c, "list_datasets", {})
    assert "No trace has tag 'mx'. Did you mean 'mix'?" in messages[0]
    assert "Dataset 'errs' already exists (latest version 1) with a different definition" in messages[1]
    assert "No dataset named 'ers'. Did you mean 'errs'? Existing: errs." in messages[2]
    assert "Dataset 'errs' has no version 9. Versions: 1 (latest 1)." in messages[3]
    assert "must be a plain file name inside the store's exports folder" in messages[4]
    assert "must be a plain file name" in messages[5]
    assert "Dataset 'errs' has no record(s) 'zzz'" in messages[6]
    assert "has only version 1" in messages[7]
    assert "Pass new_version=true" in messages[1]
    assert "sample.n" in messages[8] and "sample.allocation" in messages[9]
    assert "Unknown stratify_by dimension 'latency'. Did you mean 'latency_tier'?" in messages[10]
    assert "give tags" in messages[11] and "The selection matched no traces" in messages[12]
    assert [(d["name"], d["versions"]) for d in listed["datasets"]] == [("errs", [1])]
