"""``tracesieve sync``'s state on every engine and control plane: watermarks that persist, only move
forward (also when several processes move them at once), and the curation ``--push`` sends back.

DuckDB keeps them in its file (migration 8); a ClickHouse store in its control plane (c006): a SQLite
file beside a chdb folder, or a real PostgreSQL server (``chdb+postgres``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from server.storage.backend import Backend
from server.storage.factory import StoreUrl, build_backend, open_sync_state
from tests.factory import trace
from tools.models import Label

SOURCE = "mlflow:http://127.0.0.1:5000#support"


def test_watermarks_persist_and_only_move_forward(feature_store_url: StoreUrl,
                                                  reopen_features: Callable[[], Backend]) -> None:
    backend = build_backend(feature_store_url)
    state = open_sync_state(feature_store_url, backend, SOURCE)
    assert state.get() == (None, None)
    state.set(now_ms=1, watermark_ms=100)
    state.set(now_ms=2, watermark_ms=50, pushed_at_ms=10)  # an older watermark never moves it back
    assert state.get() == (100, 10)
    other = open_sync_state(feature_store_url, reopen_features(), "mlflow:elsewhere#*")
    assert other.get() == (None, None)  # one row per source
    again = open_sync_state(feature_store_url, reopen_features(), SOURCE)
    assert again.get() == (100, 10)


def test_processes_moving_one_watermark_at_once_keep_the_newest(feature_store_url: StoreUrl,
                                                                reopen_features: Callable[[], Backend]) -> None:
    states = [open_sync_state(feature_store_url, reopen_features(), SOURCE) for _ in range(4)]
    errors: list[BaseException] = []

    def advance(index: int) -> None:
        try:
            for step in range(10):
                states[index].set(now_ms=step, watermark_ms=1000 + step * 4 + index)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=advance, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert states[0].get() == (1000 + 9 * 4 + 3, None)


def test_curation_to_push_is_what_people_did_here_on_the_sources_traces(feature_store_url: StoreUrl) -> None:
    backend = build_backend(feature_store_url)
    from_mlflow = trace("m1", 0).model_copy(update={"source": "mlflow", "tags": {"mlflow.user": "ana"}, "labels": [
        Label(trace_id="m1", criterion="imported", value="pass", created_at_ms=5_000, source="mlflow"),
        Label(trace_id="m1", criterion="correct", value="fail", reviewer="bo", created_at_ms=6_000,
              source="manual")]})
    backend.traces.write_traces([from_mlflow, trace("local", 1)])
    for trace_id in ("m1", "local"):
        backend.traces.set_tag(trace_ids=[trace_id], expr=None, key="eval_candidate", value="edge", by="mcp",
                               now_ms=7_000)
    getattr(backend.traces, "release", lambda: None)()
    state = open_sync_state(feature_store_url, backend, SOURCE)
    todo = state.curation_since(0, "mlflow")
    assert [(t["trace_id"], t["key"], t["value"], t["op"], t["at_ms"]) for t in todo["tags"]] == [
        ("m1", "eval_candidate", "edge", "set", 7_000)]  # not the tag that came with the trace, not "local"
    assert [(label["trace_id"], label["criterion"], label["value"], label["reviewer"]) for label in todo["labels"]] \
        == [("m1", "correct", "fail", "bo")]
    assert state.curation_since(7_000, "mlflow") == {"tags": [], "labels": []}
