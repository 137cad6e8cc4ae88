"""`tracesieve sync --from-mlflow` against a real `mlflow server` process on 127.0.0.1.

Traces are logged through the real MLflow tracing SDK; the store follows them round by round (new
traces, a late tag, a new LLM-judge assessment), and `--push` sends tags and labels set in
tracesieve back, checked through the `mlflow` client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from server.cli.main import cli
from server.storage.duckdb.store import DuckDBTraceStore
from tests.factory import stored_rows
from tests.test_transports import free_port
from tests.live_server import stop_process


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                             f"sqlite:///{folder / 'mlflow.db'}", "--default-artifact-root", str(folder / "art"),
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=(folder / "server.log").open("w"), text=True,
                            env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600  # it creates its database first: minutes on a loaded machine
    while True:
        assert proc.poll() is None, (folder / "server.log").read_text()
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("mlflow server did not start")
        time.sleep(0.5)
    try:
        yield url
    finally:
        stop_process(proc)


def log_trace(question: str) -> str:
    import mlflow

    with mlflow.start_span(name="agent", span_type="AGENT") as root:
        root.set_inputs({"question": question})
        with mlflow.start_span(name="lookup", span_type="TOOL") as tool:
            tool.set_inputs({"q": question})
            tool.set_outputs({"found": True})
        root.set_outputs({"answer": f"answer to {question}"})
        return root.trace_id


def logged(client: object, *trace_ids: str) -> None:
    """Wait until the SDK's background export has put these traces on the server (it logs asynchronously)."""
    import mlflow

    if hasattr(mlflow, "flush_trace_async_logging"):
        mlflow.flush_trace_async_logging()
    deadline = time.monotonic() + 60
    for trace_id in trace_ids:
        while not _exists(client, trace_id):
            assert time.monotonic() < deadline, f"trace {trace_id} never reached the MLflow server"
            time.sleep(0.2)


def _exists(client: object, trace_id: str) -> bool:
    try:
        client.get_trace(trace_id)  # type: ignore[attr-defined]
        return True
    except Exception:  # noqa: BLE001 - not there yet
        return False


def sync(db: Path, url: str, *extra: str) -> dict:
    result = CliRunner().invoke(cli, ["sync", "--db", str(db), "--from-mlflow", url, "--experiment", "support",
                                      *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_following_an_mlflow_server_picks_up_new_traces_late_tags_assessments_and_pushes_back(
        mlflow_url: str, tmp_path: Path) -> None:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import AssessmentSource

    mlflow.set_tracking_uri(mlflow_url)
    mlflow.set_experiment("support")
    client = MlflowClient(mlflow_url)
    first = [log_trace(f"q{i}") for i in range(3)]
    logged(client, *first)
    db = tmp_path / "s.duckdb"

    one = sync(db, mlflow_url)
    assert (one["ingest"]["traces"], one["ingest"]["spans_new"], one["read_since_ms"]) == (3, 6, None)
    again = sync(db, mlflow_url)  # nothing changed: everything read again is unchanged
    assert (again["ingest"]["spans_new"], again["ingest"]["spans_unchanged"]) == (0, 6)
    assert again["read_since_ms"] == one["watermark_ms"] - 3_600_000

    new = log_trace("q3")
    logged(client, new)
    client.set_trace_tag(first[0], "priority", "high")  # a late tag on an old trace
    mlflow.log_feedback(trace_id=first[1], name="relevance", value=0.25,
                        source=AssessmentSource(source_type="LLM_JUDGE", source_id="gpt-4o"))
    three = sync(db, mlflow_url)
    assert three["ingest"]["spans_new"] == 2
    assert stored_rows(db, "SELECT count(*) FROM traces") == [(4,)]
    assert stored_rows(db, f"SELECT value FROM tags WHERE trace_id = '{first[0]}' AND key = 'priority'") == [("high",)]
    assert stored_rows(db, f"SELECT judge, score FROM scores WHERE trace_id = '{first[1]}'") == [("relevance", 0.25)]
    assert sync(db, mlflow_url)["ingest"]["spans_new"] == 0  # and the assessment is not imported twice
    assert stored_rows(db, "SELECT count(*) FROM scores") == [(1,)]

    store = DuckDBTraceStore(db)
    store.set_tag(trace_ids=[new], expr=None, key="eval_candidate", value="error_case", by="mcp", now_ms=int(time.time() * 1000))
    from server.storage.duckdb.labels_sql import DuckDBLabelStore
    from tools.labels.labelling import LabelTraceInput, label_trace

    label_trace(DuckDBLabelStore(store), LabelTraceInput(trace_id=new, criterion="correct", value="fail",
                                                         reviewer="ana@example.com", rationale="wrong order"),
                source="mcp", now_ms=int(time.time() * 1000))
    store.release()
    pushed = sync(db, mlflow_url, "--push")["push"]
    assert (pushed["tags_set"], pushed["labels_logged"], pushed["errors"]) == (1, 1, [])
    seen = client.get_trace(new)
    assert seen.info.tags["eval_candidate"] == "error_case"
    feedback = [a for a in seen.info.assessments if a.name == "correct"]
    assert [(a.value, a.source.source_type, a.source.source_id, a.rationale) for a in feedback] == [
        (False, "HUMAN", "ana@example.com", "wrong order")]
    assert sync(db, mlflow_url, "--push")["push"]["labels_logged"] == 0  # pushed once


def test_an_unreachable_server_or_a_missing_experiment_is_a_clear_error_and_writes_nothing(
        mlflow_url: str, tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    result = CliRunner().invoke(cli, ["sync", "--db", str(db), "--from-mlflow", mlflow_url, "--experiment", "nope"])
    assert result.exit_code == 2
    assert "No MLflow experiment named or numbered 'nope'" in result.output
    down = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(cli, ["sync", "--db", str(db), "--from-mlflow", down])
    assert result.exit_code == 2 and "Check the tracking URI and that the server is running" in result.output
    assert stored_rows(db, "SELECT (SELECT count(*) FROM traces), (SELECT count(*) FROM sync_state)") == [(0, 0)]
