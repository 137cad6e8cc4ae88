"""The calibration tools through a real in-process MCP client: structured results, markdown, the PNG."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from mcp import Client

from server.mcp.app import build_app
from server.storage.duckdb.store import DuckDBTraceStore
from tests.calibration_data import add_calibration, add_labels, add_scores, build_store

pytestmark = pytest.mark.anyio

TOOLS = {"label_trace", "list_labels", "import_labels", "annotation_queue", "calibration_report", "compare_runs"}
IDS = [f"c{i:02d}" for i in range(40)]


@pytest.fixture
def mstore(tmp_path: Path) -> DuckDBTraceStore:
    store = build_store(tmp_path, n=40)
    add_labels(store, "grounded", {t: "fail" if i < 12 else "pass" for i, t in enumerate(IDS[:30])})
    add_scores(store, "base", "grounded_judge", {t: "fail" if i < 10 or i == 35 else "pass" for i, t in enumerate(IDS)},
               scores={t: (i % 10) / 10 for i, t in enumerate(IDS)})
    add_scores(store, "cand", "grounded_judge", {t: "fail" if i < 22 else "pass" for i, t in enumerate(IDS)})
    return store


def text(result) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


async def test_tools_are_listed_with_schemas_and_annotations(mstore: DuckDBTraceStore) -> None:
    async with Client(build_app(mstore)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert TOOLS <= set(tools)
    assert tools["list_labels"].annotations.read_only_hint is True
    assert tools["compare_runs"].annotations.read_only_hint is True
    assert tools["label_trace"].annotations.read_only_hint is False
    assert tools["calibration_report"].output_schema["properties"]["metrics"]
    assert "exit_code" in tools["compare_runs"].output_schema["properties"]


async def test_queue_label_calibrate_compare(mstore: DuckDBTraceStore) -> None:
    async with Client(build_app(mstore)) as client:
        queue = (await client.call_tool("annotation_queue", {"criterion": "grounded", "limit": 5,
                                                             "random_share": 0.4, "seed": 3})).structured_content
        assert queue["population"] == 10 and len(queue["items"]) == 5
        first = queue["items"][0]["trace_id"]
        labelled = await client.call_tool("label_trace", {"trace_id": first, "criterion": "grounded",
                                                          "value": "no", "reviewer": "ana"})
        assert labelled.structured_content["label"]["value"] == "fail"
        listed = (await client.call_tool("list_labels", {"criterion": "grounded", "limit": 1})).structured_content
        assert listed["total_matches"] == 31 and listed["next_page_token"]

        report = await client.call_tool("calibration_report", {"judge": "grounded_judge", "criterion": "grounded",
                                                               "run_id": "base",
                                                               "resamples": 300})
        assert not report.is_error, text(report)
        data = report.structured_content
        assert (data["criterion"], data["n"], data["verdict"]) == ("grounded", 31, "gate")
        caught = first == "c35"  # the judge said fail only on c35 among the queued traces
        assert data["confusion"] == {"positive": "fail", "tp": 10.0 + caught, "fp": 0.0, "fn": 3.0 - caught,
                                     "tn": 18.0}
        kinds = [c.type for c in report.content]
        assert kinds == ["text", "image"] and report.content[1].mime_type == "image/png"
        assert base64.b64decode(report.content[1].data)[:8] == b"\x89PNG\r\n\x1a\n"
        assert report.content[0].text.startswith("### Judge `grounded_judge` vs human labels on `grounded`: **GATE**")

        compared = await client.call_tool("compare_runs", {"baseline_run": "base", "candidate_run": "cand"})
        assert compared.structured_content["verdict"] == "regressed"
        assert compared.structured_content["judges"][0]["gating"] is True  # calibrated just above
        assert "**regressed** (exit 1)" in compared.content[0].text


async def test_errors_reach_the_agent_with_the_fix(mstore: DuckDBTraceStore, tmp_path: Path) -> None:
    add_calibration(mstore, "grounded_judge", 0.7)
    async with Client(build_app(mstore)) as client:
        bad = await client.call_tool("label_trace", {"trace_id": "c400", "criterion": "grounded", "value": "fail",
                                                     "reviewer": "ana"})
        assert bad.is_error and "No trace with id 'c400'. Did you mean" in text(bad)
        bad = await client.call_tool("calibration_report", {"judge": "grounded_juge", "include_plot": False})
        assert bad.is_error and "Did you mean 'grounded_judge'?" in text(bad)
        bad = await client.call_tool("compare_runs", {"baseline_run": "base", "candidate_run": "cnad"})
        assert bad.is_error and "No scores for run 'cnad'. Did you mean 'cand'?" in text(bad)
        bad = await client.call_tool("import_labels", {"file": "missing.csv"})
        assert bad.is_error and "No file at" in text(bad)
        for outside in ("/etc/passwd", "../traces.duckdb", str(tmp_path / "labels.csv")):
            bad = await client.call_tool("import_labels", {"file": outside})
            assert bad.is_error and "must be a plain file name inside the store's exports folder" in text(bad)
            assert "tracesieve labels import PATH" in text(bad)
        bad = await client.call_tool("annotation_queue", {"criterion": "grounded", "filter": "attributes.stauts = 1"})
        assert bad.is_error and "Did you mean 'attributes.status'" in text(bad)
