"""One store holding a trace of every dialect answers one span-type filter completely.

Model calls arrive as Langfuse GENERATIONs, OpenInference LLM spans, OTel GenAI ``chat``
operations, MLflow CHAT_MODEL spans, Phoenix span exports and (from stores written before the
canonical names) rows stored as CHAT_MODEL. ``span.type = 'LLM'`` and each synonym must find
every one of those traces and nothing else; describe_store must count one model-call bucket,
in spans and in traces.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.ingestion import read_path
from server.ingestion.pipeline import ingest
from server.storage.duckdb.schema import QUERYABLE
from server.storage.duckdb.store import DuckDBTraceStore
from tests.conftest import FIXTURES
from tests.factory import BASE_MS, span, trace
from tools.models import Trace
from tools.traces.describe import describe_store
from tools.traces.search import SearchTracesInput, search_traces

DATA = Path(__file__).parent / "data" / "ingest"
LANGFUSE = ["openai-agents-2025-09-30", "crewai-2025-07-11", "agno-2025-06-11", "koog-2025-08-26"]
GENAI = FIXTURES / "openinference-genai"
NOW_MS = BASE_MS + 10**12


def _phoenix_file(folder: Path) -> Path:
    path = folder / "phoenix.jsonl"
    path.write_text(json.dumps({
        "name": "ChatAnthropic", "context": {"trace_id": "9" * 32, "span_id": "8" * 16}, "parent_id": None,
        "span_kind": "LLM", "start_time": "2025-11-13T02:00:00+00:00", "end_time": "2025-11-13T02:00:01+00:00",
        "status_code": "OK", "attributes": {"llm.model_name": "claude-sonnet-4", "input.value": "hello"}}) + "\n")
    return path


def _no_model_call() -> Trace:
    """A control: a trace whose only spans are an agent and a tool."""
    start = BASE_MS + 60_000
    return Trace(trace_id="no-model", timestamp_ms=start, source="test", name="tool_only", request="ping",
                 spans=[span("r", None, "AGENT", start, 50), span("t", "r", "TOOL", start + 1, 10, tool="ping")])


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[DuckDBTraceStore, set[str]]:
    folder = tmp_path_factory.mktemp("mixed")
    files = [FIXTURES / "langfuse" / f"{name}.trace.json" for name in LANGFUSE] + [
        GENAI / "otel_genai_client_span_tool_calls.json", GENAI / "openinference_client_span_tool_calls.json",
        DATA / "mlflow_v2.json", _phoenix_file(folder)]
    store = DuckDBTraceStore(folder / "mixed.duckdb")
    model_calling: set[str] = set()
    for path in files:
        traces = [t for t in read_path(path) if isinstance(t, Trace)]
        assert traces, path
        model_calling |= {t.trace_id for t in traces}
        assert ingest(store, iter(traces)).errors == []
    legacy = trace("legacy-chat-model", 3)  # spans built directly as CHAT_MODEL, as older stores hold them
    store.write_traces([legacy, _no_model_call()])
    model_calling.add(legacy.trace_id)
    return store, model_calling


def _ids(store: DuckDBTraceStore, text: str) -> tuple[set[str], str]:
    result = search_traces(store, SearchTracesInput(filter=text, limit=200), now_ms=NOW_MS)
    assert result.next_page_token is None
    return {t.trace_id for t in result.traces}, result.filter_explained


@pytest.mark.parametrize("name", ["LLM", "CHAT_MODEL", "chat_model", "GENERATION", "chat"])
def test_every_model_calling_trace_answers_one_span_type_filter(name: str, mixed) -> None:
    store, model_calling = mixed
    assert len(model_calling) == 9
    found, explained = _ids(store, f"span.type = '{name}'")
    assert found == model_calling
    assert explained.startswith("one span has type LLM (CHAT_MODEL, GENERATION, CHAT are synonyms of LLM)")


def test_not_a_model_call_is_the_complement(mixed) -> None:
    store, _ = mixed
    assert _ids(store, "NOT span.type = 'CHAT_MODEL'")[0] == {"no-model"}
    assert _ids(store, "span.type != 'LLM' AND span.type = 'TOOL'")[0] >= {"no-model"}


def test_describe_store_counts_spans_and_traces_under_one_name(mixed) -> None:
    store, model_calling = mixed
    result = describe_store(store, sql_tables=list(QUERYABLE))
    by_type = {row.value: row for row in result.span_types}
    assert "CHAT_MODEL" not in by_type
    llm = by_type["LLM"]
    assert (llm.counted, llm.traces) == ("spans", len(model_calling))
    assert llm.count == sum(
        sum(1 for s in t.spans if s.span_type in ("LLM", "CHAT_MODEL"))
        for t in (store.load_trace(trace_id) for trace_id in model_calling))
    assert llm.count > llm.traces  # several traces call the model more than once
    tools = {row.value: row for row in result.tools}
    assert tools["ping"].traces == 1 and tools["ping"].counted == "spans"


def test_mlflow_tag_and_metadata_filters_read_every_dialect(mixed) -> None:
    store, _ = mixed
    assert _ids(store, "tags.`mlflow.traceName` = 'Agent workflow'")[0] == {"fee618f96dc31e0ca38b2f7b26eb8b29"}
    assert _ids(store, "tags.`mlflow.traceName` = 'rag_pipeline'")[0] == {"tr-3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e"}
    session = "request_metadata.`mlflow.trace.session` = '35cc6c90-b657-4819-b66c-c931c03ad569'"
    assert _ids(store, session)[0] == {"080130871f53145aecf7c29d5dfb6e4c"}


def test_a_trace_whose_root_has_no_input_gets_the_user_words(mixed) -> None:
    store, _ = mixed
    found = search_traces(store, SearchTracesInput(filter="metadata.request_source = 'user_message'", limit=50),
                          now_ms=NOW_MS)
    previews = {t.trace_id: t.request_preview for t in found.traces}
    assert previews["fee618f96dc31e0ca38b2f7b26eb8b29"] == "What's the weather in Tokyo?"
    assert all(previews.values()) and len(previews) >= 3  # openai-agents, crewai, koog


def test_a_timestamp_in_seconds_is_warned_about(mixed) -> None:
    store, _ = mixed
    ids, explained = _ids(store, "attributes.timestamp_ms > 1764000000")
    assert "[warning: 1764000000 looks like epoch seconds, but timestamps are epoch milliseconds; did you mean " \
           "1764000000000?]" in explained
    assert ids  # read as 1970 it matches everything: the warning is what tells the user


def test_run_id_reads_the_mlflow_source_run(tmp_path: Path) -> None:
    store = DuckDBTraceStore(tmp_path / "runs.duckdb")
    a, b = trace("in-run", 0), trace("other", 1)
    store.write_traces([a.model_copy(update={"metadata": {"mlflow.sourceRun": "run-8"}}), b])
    for text in ("metadata.run_id = 'run-8'", "attributes.run_id = 'run-8'", "run_id = 'run-8'"):
        assert _ids(store, text)[0] == {"in-run"}, text
