"""MLflow filter parity: the same filter string finds the same traces in MLflow and in tracesieve.

Traces are written by the real MLflow tracing SDK into a sqlite tracking store, read into a
tracesieve store through ``read_mlflow_tracking``, and every filter below runs on both:
``mlflow.search_traces(filter_string=...)`` against the tracking store, ``search_traces`` against
ours. The filters are MLflow's documented examples and the keys its SQL store's trace-search tests
exercise (``mlflow/utils/search_utils.py``: ``VALID_SEARCH_ATTRIBUTE_KEYS``, the ``name``/``run_id``
aliases, ``request_metadata``/``metadata``, ``tags``, span ``name``/``type``/``status``, LIKE and ILIKE).
Where tracesieve answers differently on purpose, the difference is pinned in its own test.
"""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from server.ingestion import read_mlflow_tracking
from server.ingestion.pipeline import ingest
from server.storage.duckdb.store import DuckDBTraceStore
from tools.traces.search import SearchTracesInput, search_traces


class World:
    """Both stores and what was written into them."""

    def __init__(self, uri: str, experiment_id: str, run_id: str, store: DuckDBTraceStore) -> None:
        self.uri, self.experiment_id, self.run_id, self.store = uri, experiment_id, run_id, store


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    import mlflow

    root = tmp_path_factory.mktemp("parity")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    saved_env = os.environ.get("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING")
    os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"
    previous_uri, previous_cwd = mlflow.get_tracking_uri(), os.getcwd()
    os.chdir(root)
    try:
        mlflow.set_tracking_uri(uri)
        experiment_id = mlflow.create_experiment("parity", artifact_location=(root / "artifacts").as_uri())
        mlflow.set_experiment(experiment_id=experiment_id)

        def agent(name: str, question: str, *, model_type: str = "CHAT_MODEL", tool: str | None = "get_weather",
                  fail: bool = False, user: str | None = None, session: str | None = None,
                  retriever: bool = False) -> str:
            with mlflow.start_span(name, span_type="AGENT") as root_span:
                root_span.set_inputs({"question": question})
                with mlflow.start_span("chat", span_type=model_type) as chat:
                    chat.set_inputs({"messages": [{"role": "user", "content": question}]})
                    chat.set_outputs({"content": f"answer to {question}"})
                if retriever:
                    with mlflow.start_span("retrieve_docs", span_type="RETRIEVER") as docs:
                        docs.set_outputs([{"page_content": "MLflow tracing guide"}])
                if tool:
                    with mlflow.start_span(tool, span_type="TOOL") as tool_span:
                        tool_span.set_inputs({"city": "Paris"})
                        if fail:
                            tool_span.set_status("ERROR")
                metadata = {k: v for k, v in (("mlflow.trace.user", user), ("mlflow.trace.session", session)) if v}
                if metadata:
                    mlflow.update_current_trace(metadata=metadata)
                if fail:
                    root_span.set_status("ERROR")
                root_span.set_outputs("done")
            return mlflow.get_last_active_trace_id()

        ids = [agent("weather_agent", "Weather in Paris?", user="ana", session="sess-1"),
               agent("weather_agent", "Weather in Rome?", fail=True, user="bo", session="sess-1"),
               agent("rag_agent", "How do I trace?", model_type="LLM", tool=None, retriever=True, user="ana"),
               agent("rag_agent", "What is a span?", model_type="LLM", tool="search_docs", session="sess-2")]
        with mlflow.start_run() as run:
            with mlflow.start_span("run_agent", span_type="AGENT") as span:
                span.set_inputs({"question": "Logged in a run"})
                mlflow.update_current_trace(client_request_id="req-42")
                with mlflow.start_span("chat", span_type="CHAT_MODEL"):
                    pass
            ids.append(mlflow.get_last_active_trace_id())
            ids.append(agent("run_agent", "Also in the run", fail=True))
        mlflow.set_trace_tag(ids[0], "environment", "production")
        mlflow.set_trace_tag(ids[1], "environment", "staging")
        mlflow.set_trace_tag(ids[2], "environment", "production")
        mlflow.set_trace_tag(ids[3], "reviewed", "yes")

        store = DuckDBTraceStore(root / "traces.duckdb")
        report = ingest(store, read_mlflow_tracking(uri, experiment=experiment_id))
        assert (report.traces, report.errors) == (6, [])
        yield World(uri, experiment_id, run.info.run_id, store)
    finally:
        mlflow.set_tracking_uri(previous_uri)
        os.chdir(previous_cwd)
        if saved_env is None:
            os.environ.pop("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", None)
        else:
            os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = saved_env


def mlflow_ids(world: World, text: str) -> set[str]:
    import mlflow

    mlflow.set_tracking_uri(world.uri)
    traces = mlflow.search_traces(locations=[world.experiment_id], filter_string=text, return_type="list",
                                  max_results=100)
    return {t.info.trace_id for t in traces}


def our_ids(world: World, text: str) -> set[str]:
    result = search_traces(world.store, SearchTracesInput(filter=text, limit=100), now_ms=2**62)
    return {t.trace_id for t in result.traces}


#: MLflow's documented examples and the keys and operators its trace-search tests use; ``{run}``
#: is the run the last two traces were logged under.
PARITY = [
    "attributes.status = 'OK'",
    "attributes.status = 'ERROR'",
    "trace.status = 'OK'",
    "status != 'OK'",
    "attributes.status IN ('OK', 'ERROR')",
    "attributes.status LIKE 'ERR%'",
    "attributes.status ILIKE 'ok'",
    "attributes.timestamp_ms > 1000000000000",
    "trace.timestamp_ms > 1000000000000",
    "timestamp > 1000000000000",
    "attributes.execution_time_ms >= 0",
    "execution_time >= 0",
    "trace.end_time_ms > 1000000000000",
    "attributes.name = 'weather_agent'",
    "trace.name = 'rag_agent'",
    "name != 'weather_agent'",
    "name LIKE 'rag%'",
    "name ILIKE '%AGENT'",
    "tags.`mlflow.traceName` = 'weather_agent'",
    "tags.environment = 'production'",
    "tags.environment != 'production'",
    "tags.environment LIKE 'prod%'",
    "tags.reviewed = 'yes'",
    "tags.environment = 'production' AND attributes.status = 'OK'",
    "metadata.`mlflow.trace.user` = 'ana'",
    "request_metadata.`mlflow.trace.user` = 'bo'",
    "request_metadata.`mlflow.trace.session` = 'sess-1'",
    "metadata.`mlflow.trace.session` = 'sess-2'",
    "run_id = '{run}'",
    "attributes.run_id = '{run}'",
    "metadata.`mlflow.sourceRun` = '{run}'",
    "span.name = 'retrieve_docs'",
    "span.name = 'get_weather'",
    "span.name LIKE 'search%'",
    "span.type = 'TOOL'",
    "span.type = 'RETRIEVER'",
    "span.type LIKE 'RETR%'",
    "span.status = 'ERROR'",
    "span.type = 'TOOL' AND attributes.status = 'OK'",
    "trace.client_request_id = 'req-42'",
    "attributes.client_request_id = 'req-42'",
    "trace.text ILIKE '%Paris%'",
    "trace.text LIKE '%tracing guide%'",
    "span.content ILIKE '%paris%'",
    "span.content LIKE '%MLflow tracing%'",
    "attributes.status RLIKE '^ERR'",
    "name RLIKE 'rag_.*'",
    "span.type RLIKE '^RETR'",
    "tags.environment RLIKE 'prod'",
    "span.type ILIKE 'tool'",
    "span.status = 'OK'",
]


@pytest.mark.parametrize("template", PARITY)
def test_mlflow_filters_find_the_same_traces(template: str, world: World) -> None:
    text = template.format(run=world.run_id)
    expected = mlflow_ids(world, text)
    assert our_ids(world, text) == expected, text
    assert expected or "!=" in text or "ILIKE 'ok'" in text, f"{text} matched nothing in MLflow: a weak case"


def test_model_call_types_are_one_type_here_by_design(world: World) -> None:
    """MLflow keeps LLM and CHAT_MODEL apart; tracesieve stores both as LLM and treats the names as
    synonyms, so either filter finds every model-calling trace (a superset of MLflow's answer)."""
    all_six = mlflow_ids(world, "attributes.timestamp_ms > 0")
    for name in ("LLM", "CHAT_MODEL"):
        theirs = mlflow_ids(world, f"span.type = '{name}'")
        assert theirs and theirs < all_six
        assert our_ids(world, f"span.type = '{name}'") == all_six


def test_a_broken_regular_expression_is_a_filter_error(world: World) -> None:
    from tools.errors import FilterError

    with pytest.raises(FilterError) as info:
        our_ids(world, "name RLIKE 'rag_('")
    assert str(info.value).startswith("'rag_(' is not a regular expression (missing ), unterminated subpattern).")
