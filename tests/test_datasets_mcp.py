"""The dataset tools through the real in-process MCP client: the loop an agent runs, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from mcp import Client

from server.mcp.app import build_app
from server.storage.duckdb.store import DuckDBTraceStore
from tests.factory import dataset_counts, trace

pytestmark = pytest.mark.anyio

DATASET_TOOLS = {"build_dataset_from_tags", "list_datasets", "get_dataset", "diff_datasets", "merge_records",
                 "set_expectations", "export_dataset", "import_dataset"}
SECRET = "ghp_SEEDEDabcdefghijklmnopqrstuvwxyz0123456"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """120 tagged traces: 30 ERROR / 90 OK, two tool paths, one carrying seeded secrets."""
    path = tmp_path / "traces.duckdb"
    traces = [trace(f"m{i:03d}", i, status="ERROR" if i % 4 == 0 else "OK",
                    tool="refund" if i % 3 == 0 else "lookup_order", question=f"Question number {i}?",
                    tags={"eval_candidate": "error_case" if i % 4 == 0 else "edge_case"}) for i in range(120)]
    traces.append(trace("leaky", 200, tags={"eval_candidate": "pii"},
                        question=f"token {SECRET}, I am at maria.g@example.com, card 5555555555554444"))
    DuckDBTraceStore(path).write_traces(traces)
    return path


def client(db: Path) -> Client:
    return Client(build_app(DuckDBTraceStore(db)))


async def call(c: Client, tool: str, args: dict) -> dict:
    result = await c.call_tool(tool, args)
    assert not result.is_error, result.content[0].text
    return result.structured_content


async def error(c: Client, tool: str, args: dict) -> str:
    result = await c.call_tool(tool, args)
    assert result.is_error
    return result.content[0].text


async def test_every_dataset_tool_is_listed_with_fitting_annotations(db: Path) -> None:
    async with client(db) as c:
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


async def test_an_agent_builds_reads_edits_diffs_exports_and_reimports_a_dataset(db: Path) -> None:
    async with client(db) as c:
        built = await call(c, "build_dataset_from_tags", {
            "name": "support", "tags": ["eval_candidate=error_case", "eval_candidate=edge_case"],
            "sample": {"n": 40, "seed": 7, "stratify_by": ["status"]}, "description": "weekly mix"})
        assert (built["version"], built["record_count"], built["selected"]) == (1, 40, 120)
        assert {s["stratum"]: (s["population"], s["sampled"]) for s in built["strata"]} == {
            "status=ERROR": (30, 10), "status=OK": (90, 30)}

        again = await call(c, "build_dataset_from_tags", {
            "name": "support", "tags": ["eval_candidate=error_case", "eval_candidate=edge_case"],
            "sample": {"n": 40, "seed": 7, "stratify_by": ["status"]}})
        assert (again["version"], again["created"]) == (1, False)

        page = await call(c, "get_dataset", {"name": "support", "limit": 15})
        assert len(page["records"]) == 15 and page["next_offset"] == 15
        assert all(abs(r["selection_probability"] - 1 / 3) < 1e-6 for r in page["records"])  # rounded for the reader
        first = page["records"][0]["record_id"]

        edited = await call(c, "set_expectations", {"name": "support", "record_ids": [first],
                                                     "expectations": {"expected_response": "Refund sent."}})
        assert edited["version"] == 2
        merged = await call(c, "merge_records", {"name": "support", "records": [
            {"record_id": first, "expectations": {"expected_facts": ["refund"]}}]})
        assert merged["version"] == 3
        unchanged = await call(c, "get_dataset", {"name": "support@1", "limit": 15})
        assert unchanged["records"] == page["records"]  # version 1 is immutable
        diff = await call(c, "diff_datasets", {"name": "support", "a": 1})
        assert (diff["changed_count"], diff["added_count"], diff["removed_count"]) == (1, 0, 0)
        assert diff["changed"][0]["expectation_keys"] == ["expected_facts", "expected_response"]

        exported = await call(c, "export_dataset", {"name": "support@3"})
        assert Path(exported["path"]).name == "support@v3.jsonl"
        assert Path(exported["path"]).parent == db.parent / "exports"
        imported = await call(c, "import_dataset", {"name": "support_copy", "file": "support@v3.jsonl"})
        assert imported["content_hash"] == merged["content_hash"] and imported["record_count"] == 40

        listed = await call(c, "list_datasets", {})
        assert {(d["name"], d["latest_version"]) for d in listed["datasets"]} == {("support", 3), ("support_copy", 1)}


async def test_equal_allocation_through_mcp_gives_the_same_count_per_stratum(db: Path) -> None:
    async with client(db) as c:
        built = await call(c, "build_dataset_from_tags", {
            "name": "by_tool", "filter": "tags.eval_candidate != 'pii'",
            "sample": {"n": 20, "stratify_by": ["tool_path"], "allocation": "equal"}})
    assert {s["stratum"]: s["sampled"] for s in built["strata"]} == {
        "tool_path=lookup_order": 10, "tool_path=refund": 10}


async def test_a_seeded_secret_never_reaches_a_record(db: Path) -> None:
    async with client(db) as c:
        built = await call(c, "build_dataset_from_tags", {"name": "pii", "tags": ["eval_candidate=pii"]})
        page = await call(c, "get_dataset", {"name": "pii"})
    assert built["redaction"]["counts"] == {"CARD": 1, "EMAIL": 1, "SECRET": 1}
    text = json.dumps(page)
    assert SECRET not in text and "maria.g@example.com" not in text and "5555555555554444" not in text
    assert "token <SECRET_1>, I am at <EMAIL_1>, card <CARD_1>" in text
    con = duckdb.connect(str(db), read_only=True)
    try:
        stored = json.dumps(con.execute("SELECT * FROM dataset_records").fetchall())
    finally:
        con.close()
    assert SECRET not in stored and "maria.g@example.com" not in stored


@pytest.mark.parametrize("args, message", [
    ({"tags": ["eval_candiate"]}, "No trace has tag 'eval_candiate'. Did you mean 'eval_candidate'?"),
    ({"filter": "attributes.status = 'IN_PROGRESS'"}, "The selection matched no traces"),
    ({"tags": ["eval_candidate"], "sample": {"n": 0}}, "sample.n"),
    ({"tags": ["eval_candidate"], "sample": {"n": 5, "stratify_by": ["latency"]}},
     "Unknown stratify_by dimension 'latency'. Did you mean 'latency_tier'?"),
    ({"tags": ["eval_candidate"], "sample": {"n": 5, "allocation": "optimal"}}, "sample.allocation"),
    ({}, "give tags"),
])
async def test_bad_build_arguments_are_refused_and_nothing_is_written(db: Path, args: dict, message: str) -> None:
    before = dataset_counts(db)
    async with client(db) as c:
        text = await error(c, "build_dataset_from_tags", {"name": "x", **args})
    assert message in text
    assert dataset_counts(db) == before


async def test_a_name_clash_with_a_different_selection_is_refused(db: Path) -> None:
    async with client(db) as c:
        await call(c, "build_dataset_from_tags", {"name": "errs", "tags": ["eval_candidate=error_case"]})
        before = dataset_counts(db)
        text = await error(c, "build_dataset_from_tags", {"name": "errs", "tags": ["eval_candidate"]})
        assert dataset_counts(db) == before
        assert "Dataset 'errs' already exists (latest version 1) with a different definition" in text
        assert "Pass new_version=true" in text
        forced = await call(c, "build_dataset_from_tags", {"name": "errs", "tags": ["eval_candidate"],
                                                           "new_version": True})
    assert forced["version"] == 2


async def test_reads_and_imports_outside_the_rules_get_readable_errors(db: Path) -> None:
    async with client(db) as c:
        await call(c, "build_dataset_from_tags", {"name": "errs", "tags": ["eval_candidate=error_case"]})
        before = dataset_counts(db)
        unknown = await error(c, "get_dataset", {"name": "ers"})
        version = await error(c, "get_dataset", {"name": "errs", "version": 9})
        escape = await error(c, "import_dataset", {"name": "stolen", "file": "../traces.duckdb"})
        absolute = await error(c, "import_dataset", {"name": "stolen", "file": "/etc/passwd"})
        missing = await error(c, "merge_records", {"name": "errs", "records": [{"record_id": "zzz"}]})
        only_one = await error(c, "diff_datasets", {"name": "errs"})
        assert dataset_counts(db) == before
    assert "No dataset named 'ers'. Did you mean 'errs'? Existing: errs." in unknown
    assert "Dataset 'errs' has no version 9. Versions: 1 (latest 1)." in version
    assert "must be a plain file name inside the store's exports folder" in escape
    assert "must be a plain file name" in absolute
    assert "Dataset 'errs' has no record(s) 'zzz'" in missing
    assert "has only version 1" in only_one
