"""The judges family on every engine (DuckDB; ClickHouse with a SQLite or PostgreSQL control plane):
judge versions, rule runs pushed into the store with the same verdicts as Python, LLM judges
through the scripted model server on 127.0.0.1 (cache, resume after interruption, a dead
endpoint), monitoring windows, dataset targets, and the MCP tools over chdb.

Ported from the DuckDB-only ``tests/test_run_judges.py`` / ``tests/test_rule_spec_parity.py``;
the parity test also compares DuckDB's stored verdicts with ClickHouse's on the same traces.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
from mcp import Client

from server.demo.generate import generate_demo_traces
from server.mcp.app import build_app
from server.providers.openai_compat import OpenAICompatJudge
from server.providers.retry import RetryPolicy
from server.storage.backend import Backend
from tests.factory import BASE_MS, trace
from tests.scripted_llm import Answer, ScriptedLLM, scripted_llm
from tools import clock
from tools.datasets import builder
from tools.errors import ProviderError
from tools.judges import registry, rules, run_reports, runs
from tools.judges import specs as S
from tools.judges.ports import Target

pytestmark = pytest.mark.anyio

NOW = BASE_MS + 30 * 60_000
RUBRIC = {"type": "llm", "rubric": "Pass if the answer actually helps the customer.", "fields": ["input", "output"]}
EXTRA = [trace(f"x{i:02d}", 21 + i, question=f"Question {i}" + (" FAIL-ME" if i % 3 == 0 else "")) for i in range(8)]


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with scripted_llm() as server:
        yield server


@pytest.fixture
def judged(feature_backend: Backend) -> Backend:
    """small_set plus eight recent traces (three say FAIL-ME), and an LLM judge 'helpful'."""
    feature_backend.traces.write_traces(EXTRA)
    registry.define_judge(feature_backend.features.judges, registry.DefineJudgeInput(
        name="helpful", kind="llm", criterion="helpfulness", spec=RUBRIC), now_ms=NOW)
    return feature_backend


def model_for(llm: ScriptedLLM) -> OpenAICompatJudge:
    return OpenAICompatJudge(base_url=llm.base_url + "/v1", model="judge-mini", api_key=None,
                             policy=RetryPolicy(attempts=2, base_delay_s=0.01, timeout_s=2),
                             price_in_per_mtok=1.0, price_out_per_mtok=2.0)


async def run(backend: Backend, llm: ScriptedLLM | None, progress=None, **kwargs) -> run_reports.RunReport:
    js = backend.features.judges
    model = model_for(llm) if llm is not None else None
    args = {"judges": ["helpful"], "window": "1h", **kwargs}
    try:
        return await runs.run_judges(js, js, runs.RunJudgesInput(**args), model=model, no_model_hint="HINT",
                                     now_ms=NOW, progress=progress)
    finally:
        if model is not None:
            await model.aclose()


def all_items(js, target: Target) -> list:
    items, after = [], None
    while page := js.items(target, after=after, limit=7):   # small pages: the keyset paging is exercised
        items += page
        after = page[-1].item_id
    return items


def test_a_changed_spec_is_a_new_version_and_an_identical_one_is_not(feature_backend: Backend) -> None:
    js = feature_backend.features.judges
    define = lambda spec: registry.define_judge(js, registry.DefineJudgeInput(  # noqa: E731
        name="fast", kind="rule", criterion="latency", spec=spec), now_ms=NOW)
    first, again, second = define({"type": "latency", "max_ms": 3000}), define({"type": "latency", "max_ms": 3000}), \
        define({"type": "latency", "max_ms": 2000})
    assert (first.created, again.created, second.created) == (True, False, True)
    assert (first.judge.ref, again.judge.ref, second.judge.ref, second.previous) == ("fast@1", "fast@1", "fast@2",
                                                                                    "fast@1")
    assert registry.resolve(js, "fast@1").spec["max_ms"] == 3000 and registry.resolve(js, "fast").seq == 2
    [summary] = registry.list_judges(js).judges
    assert (summary.latest, summary.versions) == ("fast@2", 2)


async def _append(out: list, awaitable) -> None:
    out.append(await awaitable)


async def test_concurrent_saves_of_one_judge_get_consecutive_versions(feature_backend: Backend) -> None:
    """Every caller read the same versions (none) before saving: the store allocates seq, not the caller."""
    js = feature_backend.features.judges
    stale = [registry.JudgeRecord(name="race", version=f"{n:012x}", seq=1, kind="rule", criterion="latency",
                                  spec={"type": "latency", "max_ms": 1000 + n}, created_at_ms=NOW) for n in range(6)]
    saved: list = []
    async with anyio.create_task_group() as tg:
        for record in stale:
            tg.start_soon(_append, saved, anyio.to_thread.run_sync(js.save_judge, record))
    assert sorted(r.seq for r in saved) == [1, 2, 3, 4, 5, 6]
    assert [r.seq for r in js.judge_versions("race")] == [6, 5, 4, 3, 2, 1]


async def test_a_rule_judge_runs_in_the_store_with_the_verdicts_python_gives(judged: Backend) -> None:
    js = judged.features.judges
    spec = {"type": "phrases", "field": "input", "required": ["order"], "banned": ["FAIL-ME"]}
    registry.define_judge(js, registry.DefineJudgeInput(name="mentions", kind="rule", criterion="c", spec=spec),
                          now_ms=NOW)
    report = await run(judged, None, judges=["mentions"])
    [summary] = report.judges
    assert (report.status, summary.evaluated_in, summary.scored) == ("completed", "store", 20)
    items = all_items(js, js.load_run(report.run_id).target)
    expected = {i.item_id: rules.evaluate(S.parse_spec("rule", spec), i) for i in items}
    stored = {r["item_id"]: r for r in js.run_results(report.run_id, judge=None, verdict=None, after=None, limit=100)}
    assert len(items) == 20 and set(stored) == set(expected)
    assert {k: (r["verdict"], r["rationale"]) for k, r in stored.items()} == {
        k: (v.label, v.reason) for k, v in expected.items()}
    assert summary.failed == sum(v.label == "fail" for v in expected.values()) > 0 and summary.passed > 0
    again = await run(judged, None, resume_run_id=report.run_id)   # completed: nothing is written twice
    assert again.judges[0].scored == 20


async def test_a_killed_llm_run_resumes_without_re_calling_the_model_for_finished_items(judged, llm) -> None:
    js = judged.features.judges
    llm.latency_s = 0.1
    async with anyio.create_task_group() as tg:
        async def kill_after_six(done: float, total: float, message: str) -> None:
            if done >= 6:
                tg.cancel_scope.cancel()

        tg.start_soon(lambda: run(judged, llm, progress=kill_after_six, concurrency=1))
    [killed] = run_reports.list_runs(js, limit=5, page_token=None).runs
    assert killed.status == "interrupted" and killed.items == 20
    finished = js.finished_items(killed.run_id, js.judge_versions("helpful")[0].version)
    assert 6 <= len(finished) < 20
    calls_before = len(llm.prompts)
    llm.latency_s = 0
    resumed = await run(judged, llm, resume_run_id=killed.run_id)
    summary = resumed.judges[0]
    assert (resumed.status, resumed.run_id, summary.scored, summary.errors) == ("completed", killed.run_id, 20, 0)
    assert (summary.passed, summary.failed) == (17, 3)                  # the three FAIL-ME questions
    assert len(llm.prompts) - calls_before <= 20 - len(finished)        # finished items are never asked again


async def test_a_second_run_is_served_from_the_cache_at_no_cost(judged, llm) -> None:
    js = judged.features.judges
    first = await run(judged, llm)
    distinct = len(set(llm.prompts))
    assert first.status == "completed" and len(llm.requests) == distinct == 15
    assert first.judges[0].cache_hits == 20 - distinct and first.judges[0].cost_usd > 0
    second = await run(judged, llm)
    assert len(llm.requests) == distinct and second.run_id != first.run_id
    j = second.judges[0]
    assert (j.cache_hits, j.passed, j.failed, j.cost_usd, j.input_tokens) == (20, 17, 3, 0.0, 0)
    failures = run_reports.get_run_results(js, second.run_id, judge=None, verdict="fail", limit=2, page_token=None)
    assert len(failures.results) == 2 and failures.results[0].cached and failures.next_page_token
    rest = run_reports.get_run_results(js, second.run_id, judge="helpful", verdict="fail", limit=2,
                                       page_token=failures.next_page_token)
    assert len(rest.results) == 1 and rest.next_page_token is None
    listed = run_reports.list_runs(js, limit=1, page_token=None)
    older = run_reports.list_runs(js, limit=5, page_token=listed.next_page_token)
    # both started at NOW: the page order is (started_at_ms, run_id) descending, and paging loses none
    assert [r.run_id for r in listed.runs + older.runs] == sorted([first.run_id, second.run_id], reverse=True)


async def test_a_dead_endpoint_fails_the_run_and_a_resume_retries_only_the_errored_items(judged, llm) -> None:
    js = judged.features.judges
    llm.script = [Answer(text='{"score": 1, "reason": "fine"}')] * 5 + [Answer(status=503)] * 4 + \
        [Answer(status=401)] * 30
    with pytest.raises(ProviderError) as error:
        await run(judged, llm, concurrency=1)
    run_id = str(error.value).split()[1]
    failed = run_reports.get_run(js, run_id)
    assert failed.status == "failed" and failed.judges[0].errors >= 1
    llm.script = []
    resumed = await run(judged, llm, resume_run_id=run_id)
    summary = resumed.judges[0]
    # errored attempts were replaced by their retries, not added beside them
    assert (resumed.status, summary.scored, summary.errors) == ("completed", 20, 0)


async def test_monitoring_judges_a_filtered_sampled_window_stably(judged, llm) -> None:
    window = await run(judged, llm, filter="tags.environment = 'production'", window="10m")
    assert window.items == 8 and window.judges[0].scored == 8     # x00..x07, minutes 21..28
    sampled = await run(judged, llm, window="1h", sample_rate=0.5, dry_run=True)
    again = await run(judged, llm, window="1h", sample_rate=0.5, dry_run=True)
    assert sampled.status == "dry_run" and 0 < sampled.items < 20 and sampled.items == again.items
    capped = await run(judged, llm, window="1h", max_items=4)
    assert capped.items == 4 and capped.judges[0].scored == 4


async def test_a_dataset_version_is_judged_by_its_records(judged, llm) -> None:
    if judged.features.datasets is None:
        pytest.skip(f"the datasets family is not on {judged.engine} yet (tests/contract/test_judges_parity.py "
                    "reads records written directly)")
    judged.traces.set_tag(trace_ids=["x00", "x01", "x02"], expr=None, key="judge_case", value="yes", by="t",
                          now_ms=NOW)
    await anyio.to_thread.run_sync(lambda: builder.build_dataset_from_tags(
        judged.features.datasets, builder.BuildDatasetInput(name="cases", tags=["judge_case"], redact=False),
        now_ms=NOW))
    report = await run(judged, llm, window=None, dataset="cases")
    assert (report.status, report.target, report.items) == ("completed", "dataset cases@1", 3)
    assert (report.judges[0].passed, report.judges[0].failed) == (2, 1)   # x00 says FAIL-ME
    with pytest.raises(Exception, match="has no version 7. Versions: 1"):
        await run(judged, llm, window=None, dataset="cases@7")


async def test_the_judge_tools_work_through_an_mcp_client(feature_backend: Backend) -> None:
    feature_backend.traces.write_traces(generate_demo_traces(30, seed=2, now_ms=clock.now_ms()))
    async with Client(build_app(feature_backend)) as client:
        defined = await client.call_tool("define_judge", {"name": "quick", "kind": "rule", "criterion": "latency",
                                                          "spec": {"type": "latency", "max_ms": 3000}})
        assert not defined.is_error, defined.content
        listed = (await client.call_tool("list_judges", {})).structured_content
        ran = await client.call_tool("run_judges", {"judges": ["quick"], "window": "7d"})
        assert not ran.is_error, ran.content
        report = ran.structured_content
        got = (await client.call_tool("get_run", {"run_id": report["run_id"]})).structured_content
        runs_listed = (await client.call_tool("list_runs", {})).structured_content
        failing = (await client.call_tool("get_run_results", {"run_id": report["run_id"],
                                                                         "verdict": "fail"})).structured_content
    assert [j["latest"] for j in listed["judges"]] == ["quick@1"]
    [summary] = report["judges"]
    assert summary["evaluated_in"] == "store" and summary["scored"] == report["items"] > 0
    assert got["run_id"] == report["run_id"] and got["status"] == "completed"
    assert [r["run_id"] for r in runs_listed["runs"]] == [report["run_id"]]
    assert len(failing["results"]) == summary["failed"] > 0
    assert all(r["verdict"] == "fail" and "over max 3000 ms" in r["rationale"] for r in failing["results"])
