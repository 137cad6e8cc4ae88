"""The judge tools through a real MCP client: MCP sampling grades LLM judges with the client's own
model (on both the 2026 round-trip protocol and the handshake-era back-channel), progress
notifications arrive, and the read tools page and explain errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from mcp import Client, types

from server.mcp.app import build_app
from server.storage.duckdb.store import DuckDBTraceStore
from tests.factory import small_set, trace

pytestmark = pytest.mark.anyio

RUBRIC = {"type": "llm", "rubric": "Pass if the answer actually helps the customer.", "fields": ["input", "output"]}
JUDGE_TOOLS = {"define_judge", "list_judges", "get_judge", "train_classifier_judge", "run_judges", "get_run",
               "list_runs", "get_run_results"}


@pytest.fixture(autouse=True)
def no_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRACESIEVE_JUDGE_BASE_URL", "TRACESIEVE_JUDGE_MODEL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "mcp.duckdb"
    extra = [trace(f"x{i}", 20 + i, question=f"Question {i}" + (" FAIL-ME" if i < 3 else "")) for i in range(30)]
    DuckDBTraceStore(path).write_traces(small_set() + extra)
    return path


class ClientModel:
    """The MCP client's sampling callback: grades like a model would, counting calls."""

    def __init__(self) -> None:
        self.calls: list[types.CreateMessageRequestParams] = []

    async def __call__(self, context, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        self.calls.append(params)
        text = params.messages[0].content.text
        score = 0.0 if "FAIL-ME" in text else 1.0
        return types.CreateMessageResult(role="assistant", model="client-model", content=types.TextContent(
            type="text", text=json.dumps({"score": score, "reason": "graded by the client"})))


async def _define(client: Client) -> None:
    result = await client.call_tool("define_judge", {"name": "helpful", "kind": "llm", "criterion": "helpfulness",
                                                     "spec": RUBRIC})
    assert not result.is_error, result.content


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_mcp_sampling_grades_with_the_clients_own_model_and_reports_progress(db: Path, mode: str) -> None:
    model = ClientModel()
    progress: list[tuple[float, float | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total))

    async with Client(build_app(DuckDBTraceStore(db)), sampling_callback=model, mode=mode,
                      input_required_max_rounds=20) as client:
        await _define(client)
        result = await client.call_tool("run_judges", {"judges": ["helpful"], "filter": "attributes.status = 'OK'",
                                                       "concurrency": 8}, progress_callback=on_progress)
        assert not result.is_error, result.content
        report = result.structured_content
    assert report["status"] == "completed" and report["model"] == "sampling:mcp"
    [judge] = report["judges"]
    assert (judge["scored"], judge["passed"], judge["failed"], judge["unknown"]) == (39, 36, 3, 0)
    assert judge["first_failing_trace_ids"] == ["x0", "x1", "x2"] and judge["evaluated_in"] == "model"
    distinct_prompts = {c.messages[0].content.text for c in model.calls}
    assert len(model.calls) == len(distinct_prompts) <= 39                  # identical prompts asked once
    assert model.calls[0].system_prompt.startswith("You are an evaluation judge")
    assert model.calls[0].temperature == 0
    assert progress and progress[-1] == (39, 39)


async def test_without_an_endpoint_or_sampling_an_llm_judge_says_how_to_configure_one(db: Path) -> None:
    async with Client(build_app(DuckDBTraceStore(db))) as client:
        await _define(client)
        result = await client.call_tool("run_judges", {"judges": ["helpful"], "window": "7d"})
    assert result.is_error
    assert result.content[0].text.startswith(
        "Error executing tool run_judges: helpful@1 is an LLM judge and no judge model is available. Configure a judge endpoint: "
        "TRACESIEVE_JUDGE_BASE_URL")
    assert result.content[0].text.endswith("or call run_judges from an MCP client that supports sampling.")


async def test_the_judge_tools_are_listed_with_hints_and_described_parameters(db: Path) -> None:
    async with Client(build_app(DuckDBTraceStore(db))) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert JUDGE_TOOLS <= set(tools)
    run = tools["run_judges"].annotations
    assert (run.open_world_hint, run.idempotent_hint, run.read_only_hint) == (True, False, False)
    assert tools["get_run_results"].annotations.read_only_hint is True
    assert tools["define_judge"].annotations.idempotent_hint is True
    for name in JUDGE_TOOLS:
        assert tools[name].output_schema, name
        for param, schema in tools[name].input_schema.get("properties", {}).items():
            assert schema.get("description"), f"{name}.{param}"


async def test_rule_runs_read_back_through_get_run_list_runs_and_paged_results(db: Path) -> None:
    async with Client(build_app(DuckDBTraceStore(db))) as client:
        await client.call_tool("define_judge", {"name": "tool_failures", "kind": "rule", "criterion": "tool_error",
                                                "spec": {"type": "status", "trace_ok": False, "span_types": ["TOOL"]}})
        await client.call_tool("define_judge", {"name": "slow", "kind": "rule", "criterion": "latency",
                                                "spec": {"type": "latency", "max_ms": 3000}})
        run = (await client.call_tool("run_judges", {"judges": ["tool_failures", "slow"],
                                                     "filter": "tags.environment = 'production'"})).structured_content
        run_id = run["run_id"]
        assert [j["failed"] for j in run["judges"]] == [1, 2]    # t03 | t02, t07
        again = (await client.call_tool("get_run", {"run_id": run_id})).structured_content
        assert again["judges"] == run["judges"] and again["status"] == "completed"
        listed = (await client.call_tool("list_runs", {"limit": 5})).structured_content
        assert listed["runs"][0]["run_id"] == run_id
        page = (await client.call_tool("get_run_results", {"run_id": run_id, "verdict": "fail",
                                                           "limit": 2})).structured_content
        rest = (await client.call_tool("get_run_results", {"run_id": run_id, "verdict": "fail", "limit": 2,
                                                           "page_token": page["next_page_token"]})).structured_content
        got = [(r["judge"], r["trace_id"]) for r in page["results"] + rest["results"]]
        assert got == [("slow", "t02"), ("slow", "t07"), ("tool_failures", "t03")] and rest["next_page_token"] is None
        assert page["results"][0]["rationale"] == "took 9000 ms, over max 3000 ms"
        missing = await client.call_tool("get_run", {"run_id": "run-nope"})
        bad = await client.call_tool("define_judge", {"name": "x", "kind": "rule", "criterion": "c",
                                                      "spec": {"type": "latency", "max_ms": "fast"}})
    assert missing.is_error and missing.content[0].text == f"Error executing tool get_run: No run 'run-nope'. Recent runs: {run_id}."
    assert bad.is_error and "spec.max_ms: Input should be a valid integer" in bad.content[0].text


async def test_the_demo_judge_steps_define_run_and_show_failures_without_pretending_a_model(tmp_path: Path) -> None:
    from server.demo.generate import generate_demo_traces, ground_truth, ground_truth_labels
    from server.demo.walkthrough import Session
    from server.demo.walkthrough_judges import judge_steps

    now = int(time.time() * 1000)
    traces = generate_demo_traces(150, seed=5, now_ms=now, days=6)
    # The generator follows the clock (hour-of-day and weekday traffic), so which traces have a tool
    # error depends on when the test runs: label every failing one and fill up with passing ones.
    failing = [t for t in traces if ground_truth(t).get("tool_error") == "fail"]
    assert len(failing) >= 3, "the demo generator should give a few tool errors in 150 traces"
    passing = [t for t in traces if ground_truth(t).get("tool_error") == "pass"]
    for t in failing + passing[:60 - len(failing)]:
        t.labels = ground_truth_labels(t, created_at_ms=now, criteria=("tool_error",))
    store = DuckDBTraceStore(tmp_path / "walk.duckdb")
    store.write_traces(traces)
    lines: list[str] = []
    async with Client(build_app(store)) as client:
        await judge_steps(Session(client, lines.append), lines.append)
    text = "\n".join(lines)
    assert "agent → run_judges(" in text and "status completed" in text
    assert "grounded_citations@1" in text and "tool_error_classifier@1" in text
    assert "LLM judges: no model endpoint configured, so none was run" in text
    assert "✗" not in text
