"""run_judges end to end on the real store with a scripted model server on 127.0.0.1: a killed run
resumes without re-calling the model for finished items, identical calls come from the cache,
monitoring mode judges a sampled live window, a dead endpoint fails the run but keeps its work,
and a redacted dataset's PII never reaches the model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from server.providers.openai_compat import OpenAICompatJudge
from server.providers.retry import RetryPolicy
from server.storage.duckdb.datasets_sql import DuckDBDatasetStore
from server.storage.duckdb.store import DuckDBTraceStore
from server.storage.duckdb.judges_sql import DuckDBJudgeStore
from tests.factory import BASE_MS, small_set, trace
from tests.scripted_llm import Answer, ScriptedLLM, scripted_llm
from tools.datasets import builder
from tools.judges import registry, run_reports, runs
from tools.errors import ProviderError
from tools.judges.specs import LlmSpec
from tools.judges.llm import build_prompt

pytestmark = pytest.mark.anyio

NOW = BASE_MS + 30 * 60_000
RUBRIC = {"type": "llm", "rubric": "Pass if the answer actually helps the customer.", "fields": ["input", "output"]}


@pytest.fixture
def llm() -> Iterator[ScriptedLLM]:
    with scripted_llm() as server:
        yield server


@pytest.fixture
def js(tmp_path: Path) -> DuckDBJudgeStore:
    store = DuckDBTraceStore(tmp_path / "runs.duckdb")
    extra = [trace(f"x{i:02d}", 21 + i, question=f"Question {i}" + (" FAIL-ME" if i % 3 == 0 else ""))
             for i in range(8)]
    store.write_traces(small_set() + extra)
    store_js = DuckDBJudgeStore(store)
    registry.define_judge(store_js, registry.DefineJudgeInput(name="helpful", kind="llm", criterion="helpfulness",
                                                          spec=RUBRIC), now_ms=NOW)
    return store_js


def model_for(llm: ScriptedLLM) -> OpenAICompatJudge:
    return OpenAICompatJudge(base_url=llm.base_url + "/v1", model="judge-mini", api_key=None,
                             policy=RetryPolicy(attempts=2, base_delay_s=0.01, timeout_s=2),
                             price_in_per_mtok=1.0, price_out_per_mtok=2.0)


async def run(js: DuckDBJudgeStore, llm: ScriptedLLM, progress=None, **kwargs) -> run_reports.RunReport:
    model = model_for(llm)
    args = {"judges": ["helpful"], "window": "1h", **kwargs}
    try:
        return await runs.run_judges(js, js, runs.RunJudgesInput(**args), model=model, no_model_hint="HINT",
                                     now_ms=NOW, progress=progress)
    finally:
        await model.aclose()


def scored_ids(js: DuckDBJudgeStore, run_id: str) -> set[str]:
    with js.traces.reading() as con:
        return {r[0] for r in con.execute("SELECT record_id FROM scores WHERE run_id = $r AND error IS NULL",
                                          {"r": run_id}).fetchall()}


async def test_a_killed_run_resumes_without_re_calling_the_model_for_finished_items(js, llm) -> None:
    llm.latency_s = 0.1   # one call at a time: scores land in ~0.5 s batches, the kill comes after the 2nd
    async with anyio.create_task_group() as tg:   # cancelled mid-run, as Ctrl-C or a client disconnect does
        async def kill_after_six(done: float, total: float, message: str) -> None:
            if done >= 6:
                tg.cancel_scope.cancel()

        tg.start_soon(lambda: run(js, llm, progress=kill_after_six, concurrency=1))
    [killed] = run_reports.list_runs(js, limit=5, page_token=None).runs
    assert killed.status == "interrupted" and killed.items == 20
    finished = scored_ids(js, killed.run_id)
    calls_before = list(llm.prompts)
    assert 6 <= len(finished) < 20

    llm.latency_s = 0
    resumed = await run(js, llm, resume_run_id=killed.run_id)
    assert resumed.status == "completed" and resumed.run_id == killed.run_id
    summary = resumed.judges[0]
    assert summary.scored == 20 and summary.errors == 0
    assert (summary.passed, summary.failed) == (17, 3)                # the three FAIL-ME questions
    new_calls = llm.prompts[len(calls_before):]
    items = {i.item_id: i for i in js.items(js.load_run(killed.run_id).target, after=None, limit=100)}
    spec = LlmSpec.model_validate(RUBRIC)
    done_prompts = {build_prompt(spec, items[i]).user for i in finished}
    todo_prompts = {build_prompt(spec, items[i]).user for i in items if i not in finished}
    # a finished item is never asked again; an unfinished one is asked unless an identical prompt was answered
    assert not any(p.endswith(q) for p in new_calls for q in done_prompts)
    assert {q for q in todo_prompts if any(p.endswith(q) for p in new_calls)} == todo_prompts - done_prompts
    assert len(new_calls) < 20 - len(finished) + 1


async def test_a_second_run_is_served_from_the_cache_at_no_cost(js, llm) -> None:
    first = await run(js, llm)
    distinct = len(set(llm.prompts))            # small_set repeats some question/answer pairs
    assert first.status == "completed" and len(llm.requests) == distinct == 15
    assert first.judges[0].cache_hits == 20 - distinct   # an identical prompt in the same run is asked once
    assert first.judges[0].cost_usd == pytest.approx(sum(
        (len(p) // 4 * 1.0 + 12 * 2.0) / 1e6 for p in llm.prompts))
    assert first.estimate and first.estimate.llm_calls == 20 and first.estimate.est_cost_usd > 0
    second = await run(js, llm)
    assert len(llm.requests) == distinct and second.run_id != first.run_id
    j = second.judges[0]
    assert (j.cache_hits, j.passed, j.failed, j.cost_usd, j.input_tokens) == (20, 17, 3, 0.0, 0)
    failures = run_reports.get_run_results(js, second.run_id, judge=None, verdict="fail", limit=2, page_token=None)
    assert len(failures.results) == 2 and failures.results[0].cached and failures.next_page_token
    rest = run_reports.get_run_results(js, second.run_id, judge="helpful", verdict="fail", limit=2,
                                       page_token=failures.next_page_token)
    assert len(rest.results) == 1 and rest.next_page_token is None


async def test_monitoring_judges_a_filtered_sampled_window_stably(js, llm) -> None:
    window = await run(js, llm, filter="tags.environment = 'production'", window="10m")
    # the last 10 minutes hold x00..x07 (minutes 21..28), all production
    assert window.items == 8 and window.judges[0].scored == 8
    sampled = await run(js, llm, window="1h", sample_rate=0.5, dry_run=True)
    again = await run(js, llm, window="1h", sample_rate=0.5, dry_run=True)
    assert sampled.status == "dry_run" and 0 < sampled.items < 20 and sampled.items == again.items
    assert sampled.estimate.llm_calls == sampled.items and sampled.estimate.est_input_tokens > 0
    capped = await run(js, llm, window="1h", max_items=4)
    assert capped.items == 4 and capped.judges[0].scored == 4
    with pytest.raises(Exception, match="window '1 day' is not a duration"):
        await run(js, llm, window="1 day")


async def test_a_dead_endpoint_fails_the_run_and_keeps_finished_scores(js, llm) -> None:
    first_ok = 5
    llm.script = [Answer(text='{"score": 1, "reason": "fine"}')] * first_ok + [Answer(status=401)] * 30
    with pytest.raises(ProviderError) as error:
        await run(js, llm, concurrency=1)
    message = str(error.value)
    run_id = message.split()[1]
    assert message.startswith(f"Run {run_id} stopped after ")
    assert "rejected the request (HTTP 401)" in message and f"run_judges(resume_run_id='{run_id}')" in message
    report = run_reports.get_run(js, run_id)
    assert report.status == "failed" and report.judges[0].scored - report.judges[0].cache_hits == first_ok


async def test_a_run_without_a_model_says_how_to_configure_one(js) -> None:
    with pytest.raises(Exception, match="helpful@1 is an LLM judge and no judge model is available. HINT"):
        await runs.run_judges(js, js, runs.RunJudgesInput(judges=["helpful"], window="1h"), model=None,
                              no_model_hint="HINT", now_ms=NOW)


async def test_judges_of_a_redacted_dataset_never_see_the_pii(tmp_path: Path, llm) -> None:
    store = DuckDBTraceStore(tmp_path / "ds.duckdb")
    store.write_traces([trace("p1", 0, question="Mail jane.doe@example.com about order 991",
                              tags={"eval_candidate": "pii"}),
                        trace("p2", 1, question="Call me on +1 (206) 555-0142", tags={"eval_candidate": "pii"})])
    await anyio.to_thread.run_sync(lambda: builder.build_dataset_from_tags(
        DuckDBDatasetStore(store), builder.BuildDatasetInput(name="pii_cases", tags=["eval_candidate"]), now_ms=NOW))
    js = DuckDBJudgeStore(store)
    registry.define_judge(js, registry.DefineJudgeInput(name="helpful", kind="llm", criterion="helpfulness",
                                                    spec={**RUBRIC, "fields": ["input", "output", "tool_calls"]}),
                        now_ms=NOW)
    report = await run(js, llm, window=None, dataset="pii_cases")
    assert report.status == "completed" and report.target == "dataset pii_cases@1" and report.items == 2
    sent = "\n".join(llm.prompts)
    assert "jane.doe@example.com" not in sent and "555-0142" not in sent
    assert "<EMAIL_1>" in sent and "<PHONE_1>" in sent

    await anyio.to_thread.run_sync(lambda: builder.build_dataset_from_tags(DuckDBDatasetStore(store), (
        builder.BuildDatasetInput(name="raw_cases", tags=["eval_candidate"], redact=False)), now_ms=NOW))
    registry.define_judge(js, registry.DefineJudgeInput(name="no_emails", kind="rule", criterion="pii", spec={
        "type": "phrases", "field": "input", "banned": ["jane.doe@example.com"]}), now_ms=NOW)
    raw = await runs.run_judges(js, js, runs.RunJudgesInput(judges=["no_emails"], dataset="raw_cases"), model=None,
                                no_model_hint="", now_ms=NOW)
    redacted = await runs.run_judges(js, js, runs.RunJudgesInput(judges=["no_emails"], dataset="pii_cases@1"),
                                     model=None, no_model_hint="", now_ms=NOW)
    assert (raw.judges[0].evaluated_in, raw.judges[0].failed, raw.judges[0].first_failing_trace_ids) == (
        "store", 1, ["p1"])
    assert (redacted.judges[0].evaluated_in, redacted.judges[0].failed) == ("python", 0)


async def test_a_hard_killed_run_shows_as_interrupted_once_its_heartbeat_is_stale_and_resumes(js, llm) -> None:
    done = await run(js, llm)
    calls = len(llm.requests)
    with js.traces.writing() as con:   # what SIGKILL leaves: status 'running', a stale heartbeat, half the scores
        con.execute("UPDATE judge_runs SET status = 'running', finished_at_ms = NULL, heartbeat_ms = 1 "
                    "WHERE run_id = $r", {"r": done.run_id})
        con.execute("DELETE FROM scores WHERE run_id = $r AND record_id IN ('t01', 't06', 'x00', 'x01')",
                    {"r": done.run_id})
        con.execute("DELETE FROM judge_cache")
    stale = run_reports.get_run(js, done.run_id)
    assert stale.status == "interrupted" and f"resume_run_id='{done.run_id}'" in stale.next
    resumed = await run(js, llm, resume_run_id=done.run_id)
    assert resumed.status == "completed" and resumed.judges[0].scored == 20
    assert len(llm.requests) - calls == 4


def test_the_cli_defines_runs_and_reads_a_rule_judge(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from server.cli.main import cli

    db = tmp_path / "cli.duckdb"
    DuckDBTraceStore(db).write_traces(small_set())
    runner = CliRunner()
    bad = runner.invoke(cli, ["judge", "define", "slow", "--db", str(db), "--criterion", "latency",
                              "--spec", '{"type": "latency"}'])
    assert bad.exit_code == 2 and "spec.max_ms: Field required" in bad.output
    ok = runner.invoke(cli, ["judge", "define", "slow", "--db", str(db), "--criterion", "latency",
                             "--spec", '{"type": "latency", "max_ms": 3000}'])
    assert ok.exit_code == 0, ok.output
    ran = runner.invoke(cli, ["run", "slow", "--db", str(db), "--filter", "attributes.status = 'OK'"])
    assert ran.exit_code == 0, ran.output
    report = json.loads(ran.stdout)
    assert report["judges"][0]["first_failing_trace_ids"] == ["t07"]
    results = runner.invoke(cli, ["runs", "results", report["run_id"], "--db", str(db), "--verdict", "fail"])
    assert json.loads(results.stdout)["results"][0]["rationale"] == "took 4000 ms, over max 3000 ms"
