"""MLflow ingestion: traces written by the real MLflow tracing SDK into a sqlite store under a
temp dir, read back both as ``Trace.to_json()`` files and live through ``read_mlflow_tracking``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import pytest

from server.ingestion import read_mlflow_tracking, read_path
from tools.errors import IngestError, InvalidInputError
from tools.models import Trace

DATA = Path(__file__).parent / "data" / "ingest"


class Store:
    """What the fixture wrote, so tests can compare against it."""

    def __init__(self, uri: str, agents_id: str, ok_id: str, error_id: str, other_id: str, json_path: Path) -> None:
        self.uri, self.agents_id = uri, agents_id
        self.ok_id, self.error_id, self.other_id = ok_id, error_id, other_id
        self.json_path = json_path


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    import mlflow
    from mlflow.entities import AssessmentSource

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    saved = {key: os.environ.get(key) for key in ("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING",)}
    os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"
    previous_uri, previous_cwd = mlflow.get_tracking_uri(), os.getcwd()
    os.chdir(root)  # MLflow puts default artifact dirs under the cwd; keep them out of the repo
    try:
        mlflow.set_tracking_uri(uri)
        agents_id = mlflow.create_experiment("agents", artifact_location=(root / "artifacts").as_uri())
        other_id = mlflow.create_experiment("other", artifact_location=(root / "artifacts2").as_uri())

        @mlflow.trace(span_type="TOOL")
        def get_weather(city: str) -> dict:
            return {"city": city, "forecast": "rain"}

        @mlflow.trace(name="weather_agent", span_type="AGENT")
        def agent(question: str) -> str:
            with mlflow.start_span("chat gpt-4o", span_type="CHAT_MODEL") as span:
                span.set_inputs({"messages": [{"role": "user", "content": question}]})
                span.set_attribute("mlflow.llm.model", "gpt-4o")
                span.set_attribute("mlflow.chat.tokenUsage",
                                   {"input_tokens": 12, "output_tokens": 8, "total_tokens": 20})
                span.set_outputs({"content": "calling get_weather"})
            get_weather("Paris")
            mlflow.update_current_trace(metadata={"mlflow.trace.session": "sess-7", "mlflow.trace.user": "ana"})
            return "Rain in Paris."

        @mlflow.trace(name="failing_agent", span_type="AGENT")
        def failing(question: str) -> str:
            raise RuntimeError("model unavailable")

        mlflow.set_experiment(experiment_id=agents_id)
        agent("Weather in Paris?")
        ok_id = mlflow.get_last_active_trace_id()
        with pytest.raises(RuntimeError):
            failing("anything")
        error_id = mlflow.get_last_active_trace_id()
        mlflow.set_trace_tag(ok_id, "environment", "staging")
        mlflow.set_trace_tag(ok_id, "reviewed", "yes")
        mlflow.log_feedback(trace_id=ok_id, name="correct", value=True, rationale="matches the forecast",
                            source=AssessmentSource(source_type="HUMAN", source_id="ana@example.com"))
        mlflow.log_feedback(trace_id=ok_id, name="concise", value="yes",
                            source=AssessmentSource(source_type="LLM_JUDGE", source_id="gpt-4o-judge"))
        mlflow.log_feedback(trace_id=ok_id, name="groundedness", value=0.8,
                            source=AssessmentSource(source_type="CODE", source_id="grounding.py"))
        mlflow.log_expectation(trace_id=ok_id, name="expected_answer", value={"contains": "rain"})

        mlflow.set_experiment(experiment_id=other_id)
        with mlflow.start_span("lonely", span_type="CHAIN") as span:
            span.set_inputs({"x": 1})
        other_id_trace = mlflow.get_last_active_trace_id()

        json_path = root / "ok_trace.json"
        json_path.write_text(mlflow.get_trace(ok_id).to_json())
        yield Store(uri, agents_id, ok_id, error_id, other_id_trace, json_path)
    finally:
        mlflow.set_tracking_uri(previous_uri)
        os.chdir(previous_cwd)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def only(results: list) -> Trace:
    assert [r for r in results if isinstance(r, IngestError)] == []
    (trace,) = results
    return trace


def check_ok_trace(trace: Trace, mlflow_store: Store) -> None:
    """What the SDK wrote for ``agent("Weather in Paris?")``, as canonical fields."""
    assert trace.trace_id == mlflow_store.ok_id and trace.trace_id.startswith("tr-") and trace.source == "mlflow"
    assert trace.name == "weather_agent" and trace.status == "OK"
    spans = {span.name: span for span in trace.spans}
    assert {name: span.span_type for name, span in spans.items()} == {
        "weather_agent": "AGENT", "chat gpt-4o": "LLM", "get_weather": "TOOL"}
    assert all(len(span.span_id) == 16 and int(span.span_id, 16) >= 0 for span in trace.spans)
    assert spans["chat gpt-4o"].parent_span_id == spans["weather_agent"].span_id
    assert (spans["chat gpt-4o"].input_tokens, spans["chat gpt-4o"].output_tokens) == (12, 8)
    assert spans["get_weather"].tool_name == "get_weather"
    assert json.loads(spans["get_weather"].inputs) == {"city": "Paris"}
    assert json.loads(spans["get_weather"].outputs) == {"city": "Paris", "forecast": "rain"}
    assert spans["weather_agent"].attributes["mlflow.spanType"] == "AGENT"  # decoded once, not '"AGENT"'
    assert (trace.input_tokens, trace.output_tokens, trace.model) == (12, 8, "gpt-4o")
    assert json.loads(trace.request) == {"question": "Weather in Paris?"} and trace.response == "Rain in Paris."
    assert (trace.session_id, trace.user_id, trace.environment) == ("sess-7", "ana", "staging")
    assert trace.tags["reviewed"] == "yes" and trace.tags["mlflow.traceName"] == "weather_agent"
    assert trace.metadata["experiment_id"] == mlflow_store.agents_id
    labels = {label.criterion: label for label in trace.labels}
    assert set(labels) == {"correct", "expectation:expected_answer"}
    assert (labels["correct"].value, labels["correct"].reviewer) == ("pass", "ana@example.com")
    assert labels["correct"].rationale == "matches the forecast" and labels["correct"].source == "mlflow"
    assert json.loads(labels["expectation:expected_answer"].value) == {"contains": "rain"}
    scores = {score.judge: score for score in trace.scores}
    assert (scores["concise"].verdict, scores["concise"].value) == ("pass", "yes")
    assert (scores["groundedness"].verdict, scores["groundedness"].score) == ("unknown", 0.8)
    assert {score.run_id for score in scores.values()} == {"imported:mlflow"}
    assert trace.timestamp_ms <= labels["correct"].created_at_ms


def test_a_to_json_file_from_the_sdk_maps_every_field(mlflow_store: Store) -> None:
    check_ok_trace(only(list(read_path(mlflow_store.json_path))), mlflow_store)


def test_live_reading_matches_the_file_reading(mlflow_store: Store) -> None:
    live = {t.trace_id: t for t in read_mlflow_tracking(mlflow_store.uri, "agents") if isinstance(t, Trace)}
    assert set(live) == {mlflow_store.ok_id, mlflow_store.error_id}
    check_ok_trace(live[mlflow_store.ok_id], mlflow_store)
    assert live[mlflow_store.ok_id] == only(list(read_path(mlflow_store.json_path)))


def test_a_failed_trace_is_error_with_the_exception_message(mlflow_store: Store) -> None:
    (trace,) = [t for t in read_mlflow_tracking(mlflow_store.uri, mlflow_store.agents_id) if t.trace_id == mlflow_store.error_id]
    assert trace.status == "ERROR" and trace.name == "failing_agent"
    (span,) = trace.spans
    assert span.status == "ERROR" and "model unavailable" in (span.status_message or "")


def test_all_experiments_are_read_page_by_page(mlflow_store: Store) -> None:
    results = list(read_mlflow_tracking(mlflow_store.uri, page_size=1))
    assert all(isinstance(r, Trace) for r in results)
    assert sorted(t.trace_id for t in results) == sorted([mlflow_store.ok_id, mlflow_store.error_id, mlflow_store.other_id])
    other = {t.trace_id: t for t in results}[mlflow_store.other_id]
    assert other.spans[0].span_type == "CHAIN" and other.request == '{"x": 1}'


def test_an_unknown_experiment_lists_the_existing_ones(mlflow_store: Store) -> None:
    with pytest.raises(InvalidInputError) as caught:
        read_mlflow_tracking(mlflow_store.uri, "agnets")
    assert str(caught.value) == (
        f"No MLflow experiment named or numbered 'agnets' at '{mlflow_store.uri}'. Existing: 'Default', 'agents', "
        "'other'. Pass one of these, or omit it to read all experiments.")


def test_a_missing_sqlite_store_is_refused_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(InvalidInputError, match="No MLflow database at"):
        read_mlflow_tracking(f"sqlite:///{missing}")
    assert not missing.exists()


def test_a_list_and_json_lines_of_traces_both_load(mlflow_store: Store, tmp_path: Path) -> None:
    doc = json.loads(mlflow_store.json_path.read_text())
    broken = json.loads(mlflow_store.json_path.read_text())
    broken["info"]["trace_id"] = "tr-broken"
    del broken["data"]["spans"][1]["span_id"]
    as_list = tmp_path / "traces.json"
    as_list.write_text(json.dumps([doc, broken]))
    results = list(read_path(as_list))
    assert [r.trace_id for r in results if isinstance(r, Trace)] == [mlflow_store.ok_id]
    (error,) = [r for r in results if isinstance(r, IngestError)]
    assert str(error).startswith(f"{as_list} (item 2, trace tr-broken): span '")
    assert "has no span_id; every MLflow span needs one." in str(error)
    lines = tmp_path / "traces.jsonl"
    lines.write_text(json.dumps(doc) + "\n" + json.dumps(broken) + "\n")
    results = list(read_path(lines, "mlflow"))
    assert [r.trace_id for r in results if isinstance(r, Trace)] == [mlflow_store.ok_id]
    assert [r.location for r in results if isinstance(r, IngestError)] == ["line 2, trace tr-broken"]


def test_an_mlflow_2x_trace_with_hex_ids_and_request_metadata() -> None:
    trace = only(list(read_path(DATA / "mlflow_v2.json")))
    assert trace.trace_id == "tr-3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e"
    assert (trace.timestamp_ms, trace.execution_time_ms, trace.status) == (1716000000000, 1500, "ERROR")
    assert trace.name == "rag_pipeline" and trace.environment == "production"
    spans = {span.name: span for span in trace.spans}
    assert spans["rag_pipeline"].span_id == "5e6f7a8b9c0d1e2f" and spans["rag_pipeline"].parent_span_id is None
    assert spans["retrieve_docs"].parent_span_id == "5e6f7a8b9c0d1e2f"
    assert [spans[n].span_type for n in ("rag_pipeline", "retrieve_docs", "ChatOpenAI")] == [
        "CHAIN", "RETRIEVER", "LLM"]  # MLflow's CHAT_MODEL is stored under the one name for model calls
    chat = spans["ChatOpenAI"]
    assert chat.status == "ERROR" and chat.status_message == "Rate limit reached for gpt-4o-mini"
    assert (trace.input_tokens, trace.output_tokens) == (42, 0)
    assert json.loads(trace.request) == {"question": "What is MLflow?"}
    assert trace.metadata["mlflow.trace_schema.version"] == "2"


def test_the_cli_ingests_a_live_mlflow_store_with_tags_and_assessments(mlflow_store: Store, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from server.cli.main import cli
    from server.storage.duckdb.store import DuckDBTraceStore

    db = tmp_path / "from-mlflow.duckdb"
    result = CliRunner().invoke(cli, ["ingest", "--from-mlflow", mlflow_store.uri, "--experiment", "agents",
                                      "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert '"traces": 2' in result.output and '"error_count": 0' in result.output
    store = DuckDBTraceStore(db)
    stored = store.load_trace(mlflow_store.ok_id)
    assert stored == only(list(read_path(mlflow_store.json_path))).model_copy(update={"labels": [], "scores": []})
    with store.reading() as con:
        labels = con.execute("SELECT count(*) FROM labels WHERE trace_id = $id", {"id": mlflow_store.ok_id}).fetchone()[0]
    assert labels >= 1
