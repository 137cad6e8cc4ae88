"""`tracesieve sync --from-mlflow` into every engine, against a real `mlflow server` on 127.0.0.1.

On DuckDB the watermarks live in the store file; over ClickHouse in the control plane (c006,
a SQLite file beside a chdb folder here). Each round is a separate CLI invocation, so a round that
reads from ``watermark - overlap`` shows the watermark was stored, not remembered in memory.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from click.testing import CliRunner

from server.cli.main import cli
from server.storage.backend import Backend
from server.storage.factory import StoreUrl
from tests.test_mlflow_sync import log_trace, logged, mlflow_url  # noqa: F401  (mlflow_url is a fixture)


def _store_args(url: StoreUrl) -> list[str]:
    return ["--db", str(url.path)] if url.engine == "duckdb" else ["--store", url.display()]


def _sync(url: StoreUrl, tracking: str, *extra: str) -> dict:
    result = CliRunner().invoke(cli, ["sync", *_store_args(url), "--from-mlflow", tracking,
                                      "--experiment", f"support-{url.engine}", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def _release(backend: Backend) -> Backend:
    release = getattr(backend.traces, "release", None)
    if release:
        release()  # let the next CLI round at a DuckDB file
    return backend


def test_sync_follows_new_traces_late_tags_and_assessments_and_pushes_tags_back(
        mlflow_url: str, store_url: StoreUrl, reopen: Callable[[], Backend]) -> None:  # noqa: F811
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import AssessmentSource

    mlflow.set_tracking_uri(mlflow_url)
    mlflow.set_experiment(f"support-{store_url.engine}")
    client = MlflowClient(mlflow_url)
    first = [log_trace(f"{store_url.engine} q{i}") for i in range(2)]
    logged(client, *first)

    one = _sync(store_url, mlflow_url)
    assert (one["ingest"]["spans_new"], one["read_since_ms"]) == (4, None)
    again = _sync(store_url, mlflow_url)
    assert (again["ingest"]["spans_new"], again["ingest"]["spans_unchanged"]) == (0, 4)
    assert again["read_since_ms"] == one["watermark_ms"] - 3_600_000 and again["watermark_ms"] == one["watermark_ms"]

    client.set_trace_tag(first[0], "priority", "high")  # a late tag on an old trace
    mlflow.log_feedback(trace_id=first[1], name="relevance", value=0.25,
                        source=AssessmentSource(source_type="LLM_JUDGE", source_id="gpt-4o"))
    _sync(store_url, mlflow_url)
    _sync(store_url, mlflow_url)  # the assessment is not imported twice
    store = _release(reopen()).traces
    loaded = store.load_trace(first[0])
    assert loaded is not None and loaded.tags.get("priority") == "high" and len(loaded.spans) == 2
    stats = store.stats()
    assert [tuple(j) for j in stats["judges"]] == [("relevance", 1, 1)]
    assert stats["trace_count"] >= 2

    store.set_tag(trace_ids=[first[1]], expr=None, key="eval_candidate", value="edge", by="mcp",
                  now_ms=int(time.time() * 1000))
    getattr(store, "release", lambda: None)()
    pushed = _sync(store_url, mlflow_url, "--push")["push"]
    assert (pushed["tags_set"], pushed["errors"]) == (1, [])
    assert client.get_trace(first[1]).info.tags["eval_candidate"] == "edge"
    assert _sync(store_url, mlflow_url, "--push")["push"]["tags_set"] == 0  # pushed once
