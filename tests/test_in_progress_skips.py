"""Traces whose root span has not arrived (IN_PROGRESS) are left out of datasets and judge runs by
default, and both say how many they left out."""

from __future__ import annotations

from pathlib import Path

import anyio

from server.storage.duckdb.datasets_sql import DuckDBDatasetStore
from server.storage.duckdb.judges_sql import DuckDBJudgeStore
from server.storage.duckdb.store import DuckDBTraceStore
from tests.factory import BASE_MS, trace
from tools.datasets.builder import BuildDatasetInput, build_dataset_from_tags
from tools.judges import registry, runs

NOW = BASE_MS + 30 * 60_000


def store_with_a_partial_trace(tmp_path: Path) -> DuckDBTraceStore:
    """Three finished traces and one whose root has not arrived (only its two child spans)."""
    store = DuckDBTraceStore(tmp_path / "s.duckdb")
    partial = trace("p1", 4)
    partial = partial.model_copy(update={"spans": partial.spans[1:], "status": "IN_PROGRESS", "name": None,
                                         "request": None, "response": None})
    store.write_traces([trace("t1", 1), trace("t2", 2), trace("t3", 3), partial])
    return store


def test_a_dataset_skips_in_progress_traces_unless_asked(tmp_path: Path) -> None:
    store = store_with_a_partial_trace(tmp_path)
    ds = DuckDBDatasetStore(store)
    built = build_dataset_from_tags(ds, BuildDatasetInput(name="all", tags=["environment"]), now_ms=NOW)
    assert (built.record_count, built.skipped_in_progress) == (3, 1)
    assert built.warnings[0].startswith("Skipped 1 selected trace(s) still IN_PROGRESS")
    kept = build_dataset_from_tags(ds, BuildDatasetInput(name="with_partial", tags=["environment"],
                                                         include_in_progress=True), now_ms=NOW)
    assert (kept.record_count, kept.skipped_in_progress) == (4, 0)


def test_a_monitoring_run_skips_in_progress_traces_and_counts_them(tmp_path: Path) -> None:
    js = DuckDBJudgeStore(store_with_a_partial_trace(tmp_path))
    registry.define_judge(js, registry.DefineJudgeInput(name="slow", kind="rule", criterion="latency",
                                                        spec={"type": "latency", "max_ms": 5000}), now_ms=NOW)

    async def go() -> runs.RunReport:
        return await runs.run_judges(js, js, runs.RunJudgesInput(judges=["slow"], window="1h"), model=None,
                                     no_model_hint="", now_ms=NOW)

    report = anyio.run(go)
    assert (report.items, report.skipped_in_progress) == (3, 1)
