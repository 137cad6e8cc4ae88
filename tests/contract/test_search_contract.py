"""search_traces gives the same answers on every engine: filters, order, pages, counts."""

from __future__ import annotations

import json

import pytest

from server.storage.backend import Backend
from tests.factory import BASE_MS
from tools.traces.search import SearchTracesInput, search_traces

ALL = {f"t{i:02d}" for i in range(1, 13)}

#: Filter -> the traces of ``tests.factory.small_set`` it selects (worked out from the factory by hand).
CASES: dict[str, set[str]] = {
    "": ALL,
    "attributes.status = 'ERROR'": {"t02", "t05", "t09"},
    "span.type = 'TOOL' AND span.status = 'ERROR'": {"t03", "t09"},
    "NOT span.status = 'ERROR'": ALL - {"t02", "t03", "t05", "t09"},
    "tags.environment = 'staging'": {"t04", "t05", "t09", "t10"},
    "tags.environment != 'production'": {"t04", "t05", "t09", "t10"},
    "tags.eval_candidate IS NOT NULL": {"t07"},
    "tags.eval_candidate IS NULL": ALL - {"t07"},
    "tags.eval_candidate IN ('slow', 'other')": {"t07"},
    "text CONTAINS 'REFUND'": {"t03", "t07"},
    "attributes.request ILIKE '%password%'": {"t06"},
    "attributes.execution_time_ms > 3000": {"t02", "t07"},
    "attributes.total_tokens >= 150 AND attributes.execution_time_ms < 1000": {"t10"},
    "attributes.model IN ('claude-sonnet-4')": {"t08"},
    "attributes.model NOT IN ('gpt-4o-mini')": {"t08"},
    "attributes.tool_names = 'reset_password'": {"t06"},
    "attributes.tool_names IN ('track_shipment', 'reset_password')": {"t06", "t11"},
    "attributes.session_id IS NULL": ALL,
    "attributes.error_count > 1": {"t09"},
    f"attributes.timestamp_ms >= {BASE_MS + 10 * 60_000}": {"t11", "t12"},
    "attributes.timestamp_ms > '2025-11-13T02:23:00Z'": {"t11", "t12"},
    "attributes.timestamp_ms > now() - 1d": set(),
    "metadata.region = 'eu'": ALL,
    "metadata.region = 'us' OR attributes.status = 'ERROR'": {"t02", "t05", "t09"},
    "metadata.missing IS NULL": ALL,
    "span.tool_name = 'lookup_order' AND span.duration_ms >= 300": ALL - {"t06", "t11"},
    "span.status_message ILIKE '%timeout%'": {"t03", "t09"},
    "span.attributes.nope = 'x'": set(),
    "NOT (attributes.status = 'ERROR' OR tags.environment = 'staging')": ALL - {"t02", "t04", "t05", "t09", "t10"},
    # one vocabulary: the factory stores model spans under the legacy CHAT_MODEL name
    "span.type = 'LLM'": ALL,
    "span.type = 'GENERATION'": ALL,
    "span.type != 'LLM'": ALL,
    "span.type IN ('LLM', 'RETRIEVER') AND span.model = 'claude-sonnet-4'": {"t08"},
    "span.content CONTAINS 'reset_password'": {"t06"},
    "attributes.request RLIKE 'Refund|refund'": {"t03", "t07"},
    f"trace.end_time_ms > {BASE_MS + 9 * 60_000 + 1_000}": {"t11", "t12"},
}


def ids(backend: Backend, filter: str, **kw) -> list[str]:
    result = search_traces(backend.traces, SearchTracesInput(filter=filter, limit=200, **kw), now_ms=BASE_MS + 10**10)
    return [t.trace_id for t in result.traces]


@pytest.mark.parametrize("filter", list(CASES))
def test_every_engine_selects_the_same_traces(shared_backend: Backend, filter: str) -> None:
    assert set(ids(shared_backend, filter)) == CASES[filter]


def test_newest_first_is_the_default_order(shared_backend: Backend) -> None:
    assert ids(shared_backend, "") == [f"t{i:02d}" for i in range(12, 0, -1)]


def test_pages_walk_every_match_once_in_order(shared_backend: Backend) -> None:
    order = ["attributes.execution_time_ms DESC"]
    seen: list[str] = []
    token = None
    while True:
        page = search_traces(shared_backend.traces, SearchTracesInput(order_by=order, limit=5, page_token=token),
                             now_ms=BASE_MS)
        seen += [t.trace_id for t in page.traces]
        assert page.total_matches == 12
        token = page.next_page_token
        if token is None:
            break
    # 9000, 4000, then 1500 ms (ties by id ascending), then 700.
    assert seen == ["t02", "t07", "t01", "t03", "t04", "t05", "t06", "t08", "t09", "t11", "t12", "t10"]


def test_text_orders_break_ties_by_trace_id(shared_backend: Backend) -> None:
    assert ids(shared_backend, "", order_by=["attributes.name ASC"]) == sorted(ALL)
    assert ids(shared_backend, "", order_by=["attributes.status ASC"]) == ["t02", "t05", "t09", *sorted(ALL - {"t02", "t05", "t09"})]


def test_a_summary_carries_tags_counts_and_previews(shared_backend: Backend) -> None:
    page = search_traces(shared_backend.traces, SearchTracesInput(filter="attributes.trace_id = 't09'"), now_ms=BASE_MS)
    (t,) = page.traces
    assert (t.status, t.span_count, t.error_span_count, t.tool_names) == ("ERROR", 3, 2, ["lookup_order"])
    assert t.tags == {"environment": "staging"}
    assert "Where is my order?" in (t.request_preview or "")


def _assessed() -> list:
    """Five traces carrying what MLflow assessments become (``ingestion.mlflow_json``): human labels,
    judge scores, ``expectation:<name>`` labels, a corrected label, a whole-session label; a linked
    prompt; a span of a custom declared type."""
    from tests.factory import trace
    from tools.models import SESSION_LABEL_SOURCE, Label, Score

    def label(tid: str, criterion: str, value: str, at: int, numeric: float | None = None, source: str = "mlflow"):
        return Label(trace_id=tid, criterion=criterion, value=value, numeric_value=numeric, created_at_ms=BASE_MS + at,
                     source=source)

    a, b, c, d, e = (trace(f"a{i}", i, session="s-1" if i in (1, 2, 3) else None) for i in range(1, 6))
    a.labels = [label("a1", "correctness", "fail", 1), label("a1", "correctness", "pass", 2),  # corrected
                label("a1", "expectation:length", "150", 1),
                label("a1", "tone", "friendly", 1, source=SESSION_LABEL_SOURCE)]  # covers s-1
    b.scores = [Score(trace_id="a2", judge="correctness", verdict="fail", value="false", run_id="imported:mlflow",
                      created_at_ms=BASE_MS)]
    c.labels = [label("a3", "helpfulness", "5", 1, numeric=5.0), label("a3", "expectation:format", '"JSON array"', 1)]
    d.tags = {"mlflow.linkedPrompts": json.dumps([{"name": "qa", "version": "2"}])}
    e.spans[2].attributes = {"mlflow.spanType": "MY_CUSTOM"}
    return [a, b, c, d, e]


#: Filter -> the traces of ``_assessed`` it selects.
ASSESSED: dict[str, set[str]] = {
    "feedback.correctness = 'yes'": {"a1"},
    "feedback.correctness = 'false'": {"a2"},
    "feedback.correctness IS NULL": {"a3", "a4", "a5"},
    "feedback.helpfulness >= 4": {"a3"},
    "feedback.helpfulness = '5'": {"a3"},
    "feedback.tone = 'friendly'": {"a1", "a2", "a3"},
    "feedback.tone IS NULL": {"a4", "a5"},
    "expectation.length = '150'": {"a1"},
    "expectation.format = 'JSON array'": {"a3"},
    "expectation.format LIKE '%JSON%'": {"a3"},
    "labels.correctness = 'pass'": {"a1"},
    "scores.correctness = 'fail'": {"a2"},
    "prompt = 'qa/2'": {"a4"},
    "prompt = 'qa/1'": set(),
    "span.type = 'MY_CUSTOM'": {"a5"},
    "span.type LIKE 'MY_%'": {"a5"},
}


@pytest.fixture(scope="module")
def assessed_backend(engine: str, tmp_path_factory: pytest.TempPathFactory, chdb_folder) -> Backend:
    from tests.contract.conftest import _new_store
    from server.storage.factory import build_backend

    for url in _new_store(engine, tmp_path_factory.mktemp("assessed"), chdb_folder):
        backend = build_backend(url)
        backend.traces.write_traces(_assessed())
        yield backend


@pytest.mark.parametrize("filter", list(ASSESSED))
def test_assessment_prompt_and_custom_type_filters_agree_on_every_engine(assessed_backend: Backend, filter: str) -> None:
    assert set(ids(assessed_backend, filter)) == ASSESSED[filter]
