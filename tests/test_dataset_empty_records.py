"""Datasets say how many records have empty inputs or outputs, name some, and can leave them out.

The store holds an agent trace whose root has no input (its request comes from the first user
message at ingest), a normal trace, and two traces that really hold no words: one with no request
anywhere, one with no response anywhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from server.ingestion import read_path
from server.ingestion.pipeline import ingest
from server.storage.duckdb.datasets_sql import DuckDBDatasetStore
from server.storage.duckdb.store import DuckDBTraceStore
from tests.conftest import FIXTURES
from tests.factory import BASE_MS, span, trace
from tools.datasets.builder import BuildDatasetInput, build_dataset_from_tags
from tools.errors import InvalidInputError
from tools.models import Trace

AGENTS = FIXTURES / "langfuse" / "openai-agents-2025-09-30.trace.json"
NOW_MS = BASE_MS + 10**12


def _silent(trace_id: str, minute: int, *, request: str | None, response: str | None) -> Trace:
    start = BASE_MS + minute * 60_000
    return Trace(trace_id=trace_id, timestamp_ms=start, source="test", request=request, response=response,
                 tags={"pick": "yes"}, spans=[span(f"{trace_id}-r", None, "AGENT", start, 10)])


@pytest.fixture
def ds(tmp_path: Path) -> DuckDBDatasetStore:
    store = DuckDBTraceStore(tmp_path / "t.duckdb")
    agents = [t.model_copy(update={"tags": {"pick": "yes"}}) for t in read_path(AGENTS) if isinstance(t, Trace)]
    assert ingest(store, iter(agents)).errors == []
    store.write_traces([trace("normal", 0, tags={"pick": "yes"}),
                        _silent("no-request", 1, request=None, response="Done."),
                        _silent("no-response", 2, request='{"question": "Status?"}', response=None)])
    return DuckDBDatasetStore(store)


def test_empty_records_are_counted_with_examples(ds: DuckDBDatasetStore) -> None:
    result = build_dataset_from_tags(ds, BuildDatasetInput(name="all", tags=["pick"], redact=False), now_ms=NOW_MS)
    assert result.record_count == 4
    assert [w for w in result.warnings if "record(s) with empty" in w] == [
        "1 record(s) with empty inputs (no request or user message in the trace), e.g. no-request, were kept; "
        "pass skip_empty=true to leave them out, or read one with get_trace.",
        "1 record(s) with empty outputs (no response or model output in the trace), e.g. no-response, were kept; "
        "pass skip_empty=true to leave them out, or read one with get_trace."]
    records = {r.trace_id: r for r in ds.records("all", 1)}
    # the agent trace whose root had no input: its record holds the user's words
    assert records["fee618f96dc31e0ca38b2f7b26eb8b29"].inputs == {"request": "What's the weather in Tokyo?"}


def test_skip_empty_leaves_them_out_and_says_so(ds: DuckDBDatasetStore) -> None:
    result = build_dataset_from_tags(ds, BuildDatasetInput(name="clean", tags=["pick"], redact=False, skip_empty=True),
                                     now_ms=NOW_MS)
    assert result.record_count == 2
    assert {r.trace_id for r in ds.records("clean", 1)} == {"normal", "fee618f96dc31e0ca38b2f7b26eb8b29"}
    assert any(w.startswith("1 record(s) with empty inputs") and w.endswith("were skipped (skip_empty=true).")
               for w in result.warnings)


def test_skip_empty_that_leaves_nothing_writes_nothing(ds: DuckDBDatasetStore) -> None:
    with pytest.raises(InvalidInputError, match="skip_empty left no records"):
        build_dataset_from_tags(ds, BuildDatasetInput(name="none", filter="attributes.trace_id = 'no-request'",
                                                      skip_empty=True), now_ms=NOW_MS)
    assert ds.versions("none") == []
