"""Redaction where data leaves other than datasets: judge prompts, exports, the annotation queue, reads.

Each test seeds one trace with personal data and checks the bytes that leave: what the judge
endpoint (a real HTTP server on 127.0.0.1) received, the exported file, the queue result, and
the MCP tool result with TRACESIEVE_REDACT_READS=1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from server.exchange.datasets import export_dataset
from server.mcp.app import build_app
from server.providers.openai_compat import OpenAICompatJudge
from server.providers.retry import RetryPolicy
from server.storage.duckdb.datasets_sql import DuckDBDatasetStore
from server.storage.duckdb.judges_sql import DuckDBJudgeStore
from server.storage.duckdb.queue_sql import DuckDBQueueStore
from server.storage.duckdb.store import DuckDBTraceStore
from tests.factory import BASE_MS, trace
from tests.scripted_llm import scripted_llm
from tools.datasets import builder
from tools.judges import registry, runs
from tools.labels import annotation_queue as aq

pytestmark = pytest.mark.anyio

NOW = BASE_MS + 30 * 60_000
EMAIL, PASSWORD = "dana.whitfield@example.org", "Hx9!vLq2#Tz7"
QUESTION = f"I am {EMAIL}; my new password is {PASSWORD}, please reset it"
ANSWER = f"Done: {PASSWORD} is now set for {EMAIL.upper()}"


@pytest.fixture
def store(tmp_path: Path) -> DuckDBTraceStore:
    s = DuckDBTraceStore(tmp_path / "exits.duckdb")
    s.write_traces([trace("leaky", 1, question=QUESTION, answer=ANSWER, tags={"eval_candidate": "pii"}),
                    trace("plain", 2, tags={"eval_candidate": "plain"})])
    return s


async def test_an_llm_judge_on_live_traces_receives_redacted_prompts(store: DuckDBTraceStore,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    js = DuckDBJudgeStore(store)
    registry.define_judge(js, registry.DefineJudgeInput(name="helpful", kind="llm", criterion="helpfulness", spec={
        "type": "llm", "rubric": "Pass if the answer helps.", "fields": ["input", "output"]}), now_ms=NOW)
    with scripted_llm() as llm:
        model = OpenAICompatJudge(base_url=llm.base_url + "/v1", model="judge-mini", api_key=None,
                                  policy=RetryPolicy(attempts=2, base_delay_s=0.01, timeout_s=2))
        try:
            report = await runs.run_judges(js, js, runs.RunJudgesInput(judges=["helpful"], window="1h"), model=model,
                                           no_model_hint="", now_ms=NOW)
            sent = "\n".join(llm.prompts)
            assert report.status == "completed" and report.items == 2
            assert EMAIL not in sent and EMAIL.upper() not in sent and PASSWORD not in sent
            # one numbering per item: the answer's upper-cased email and echoed password keep their placeholders
            assert "<EMAIL_1>" in sent and "Done: <SECRET_1> is now set for <EMAIL_1>" in sent

            monkeypatch.setenv("TRACESIEVE_REDACT_JUDGE_INPUTS", "off")
            await runs.run_judges(js, js, runs.RunJudgesInput(judges=["helpful"], window="1h"), model=model,
                                  no_model_hint="", now_ms=NOW)
            assert EMAIL in "\n".join(llm.prompts)  # the operator's switch is honoured
        finally:
            await model.aclose()


def test_exporting_a_version_built_without_redaction_redacts_the_file(store: DuckDBTraceStore,
                                                                       tmp_path: Path) -> None:
    ds = DuckDBDatasetStore(store)
    builder.build_dataset_from_tags(ds, builder.BuildDatasetInput(name="raw", tags=["eval_candidate"], redact=False),
                                    now_ms=NOW)
    result = export_dataset(ds, "raw", None, "jsonl", path=tmp_path / "raw.jsonl")
    written = (tmp_path / "raw.jsonl").read_text()
    assert result.record_count == 2 and EMAIL not in written and PASSWORD not in written
    assert "<EMAIL_1>" in written and any("redacted on export" in n for n in result.notes)


def test_the_annotation_queue_shows_redacted_previews_and_says_so(store: DuckDBTraceStore) -> None:
    result = aq.annotation_queue(DuckDBQueueStore(store), aq.AnnotationQueueInput(criterion="correct", limit=5,
                                                                                  random_share=1.0, seed=1),
                                 now_ms=NOW, record=False)
    previews = " ".join(i.request_preview or "" for i in result.items)
    assert EMAIL not in previews and "<EMAIL_1>" in previews
    assert result.redacted.get("EMAIL") == 1


async def test_reads_are_redacted_only_when_the_operator_says_so(store: DuckDBTraceStore,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = store.path
    async with Client(build_app(DuckDBTraceStore(path))) as c:
        plain = await c.call_tool("get_trace", {"trace_id": "leaky"})
        assert EMAIL in json.dumps(plain.structured_content)
    monkeypatch.setenv("TRACESIEVE_REDACT_READS", "1")
    async with Client(build_app(DuckDBTraceStore(path))) as c:
        got = await c.call_tool("get_trace", {"trace_id": "leaky"})
        found = await c.call_tool("search_traces", {"filter": "tags.eval_candidate = 'pii'"})
    for result in (got, found):
        assert not result.is_error
        text = json.dumps(result.structured_content)
        assert EMAIL not in text and PASSWORD not in text and "<EMAIL_1>" in text
    assert got.structured_content["trace"]["trace_id"] == "leaky"  # ids are not content
