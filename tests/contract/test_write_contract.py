"""Writes on every engine: nothing duplicated, nothing lost, a trace read back as written."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from server.storage.backend import Backend
from tests.factory import BASE_MS, small_set, trace
from tools import clock
from tools.models import Score, Trace
from tools.traces.describe import describe_store


def counts(backend: Backend) -> tuple[int, int]:
    stats = backend.traces.stats()
    return stats["trace_count"], stats["span_count"]


def test_a_trace_reads_back_as_it_was_written(backend: Backend) -> None:
    written = {t.trace_id: t for t in small_set()}["t09"]
    loaded = backend.traces.load_trace("t09")
    assert loaded is not None
    keep = {"labels", "scores"}
    assert loaded.model_dump(exclude=keep) == written.model_dump(exclude=keep)


def test_writing_the_same_traces_again_duplicates_nothing(backend: Backend, reopen: Callable[[], Backend]) -> None:
    assert counts(backend) == (12, 36)
    backend.traces.write_traces(small_set())
    assert counts(reopen()) == (12, 36)
    assert len(backend.traces.known_trace_ids([f"t{i:02d}" for i in range(1, 13)])) == 12


def test_a_rewritten_trace_takes_the_new_content(backend: Backend) -> None:
    backend.traces.write_traces([trace("t01", 0, status="ERROR", answer="changed")])
    loaded = backend.traces.load_trace("t01")
    assert loaded is not None and loaded.status == "ERROR" and "changed" in (loaded.response or "")


def test_duplicate_ids_in_one_batch_keep_the_last_copy(empty_backend: Backend) -> None:
    outcome = empty_backend.traces.write_traces([trace("x", 0, answer="first"), trace("x", 0, answer="second")])
    assert (outcome.traces, outcome.spans_new) == (1, 3)
    loaded = empty_backend.traces.load_trace("x")
    assert loaded is not None and "second" in (loaded.response or "")
    assert counts(empty_backend) == (1, 3)


def test_tags_set_by_people_survive_a_reingest(backend: Backend) -> None:
    backend.traces.set_tag(trace_ids=["t01"], expr=None, key="reviewed", value="yes", by="test", now_ms=1)
    backend.traces.write_traces([trace("t01", 0)])
    loaded = backend.traces.load_trace("t01")
    assert loaded is not None and loaded.tags == {"environment": "production", "reviewed": "yes"}


def test_an_unknown_id_is_none_and_close_ids_are_suggested(backend: Backend) -> None:
    assert backend.traces.load_trace("t1") is None
    assert backend.traces.similar_trace_ids("t1", 2)[0] in {"t01", "t10", "t11", "t12"}


def test_describe_store_counts_what_is_stored(backend: Backend) -> None:
    d = describe_store(backend.traces, sql_tables=list(backend.sql_tables))
    assert (d.trace_count, d.span_count) == (12, 36)
    assert {(c.value, c.traces) for c in d.statuses} == {("OK", 9), ("ERROR", 3)}
    assert {(c.value, c.traces) for c in d.environments} == {("production", 8), ("staging", 4)}
    assert [(t.key, t.traces, t.top_values) for t in d.tag_keys] == [
        ("environment", 12, ["production", "staging"]), ("eval_candidate", 1, ["slow"])]
    assert {(c.value, c.traces) for c in d.span_types} == {("AGENT", 12), ("LLM", 12), ("TOOL", 12)}
    assert d.first_trace_time == "2025-11-13T02:13:20.000Z"


def _pieces() -> tuple[Trace, Trace]:
    """One trace sent in two batches: the children first, the root (which started a day earlier) later."""
    whole = trace("late", 0, tool_status="ERROR")
    root, llm, tool = whole.spans
    early_root = root.model_copy(update={"start_time_ns": root.start_time_ns - 86_400_000_000_000})
    children = whole.model_copy(update={"spans": [llm, tool], "status": "OK", "timestamp_ms": BASE_MS + 10,
                                        "request": None, "response": None})
    with_root = whole.model_copy(update={"spans": [early_root], "timestamp_ms": BASE_MS - 86_400_000})
    return children, with_root


def test_spans_sent_in_pieces_add_up_and_a_late_root_moves_the_trace(
        engine: str, empty_backend: Backend, reopen: Callable[[], Backend]) -> None:
    children, with_root = _pieces()
    store = empty_backend.traces
    store.write_traces([children])
    store.write_traces([with_root])
    again = store.write_traces([children])  # at-least-once delivery: the children again
    assert (again.spans_new, again.spans_updated, again.spans_unchanged) == (0, 0, 2)
    loaded = reopen().traces.load_trace("late")
    assert loaded is not None
    assert sorted(s.span_id for s in loaded.spans) == ["late-llm", "late-root", "late-tool"]
    assert loaded.timestamp_ms == BASE_MS - 86_400_000  # the root's header, kept when later pieces lack a root
    page = store.search(None, [], limit=10, after=None, now_ms=BASE_MS, count_cap=100)
    assert [(r.trace_id, r.span_count, r.error_count, r.timestamp_ms) for r in page.rows] == [
        ("late", 3, 1, BASE_MS - 86_400_000)]
    assert page.total_matches == 1


def test_replace_retires_an_earlier_load_but_merges_batches_of_the_same_load(
        empty_backend: Backend, reopen: Callable[[], Backend]) -> None:
    """``ingest --replace``: a trace stored by an earlier load is replaced whole (its spans the new load
    does not send, and its imported scores, go); batches of the replacing load itself add up."""
    store = empty_backend.traces
    earlier = trace("r", 0, answer="old answer")
    earlier.scores = [Score(trace_id="r", judge="imported_judge", verdict="pass", run_id="imported:test")]
    store.write_traces([earlier, trace("other", 1)])
    time.sleep(0.005)
    before = clock.now_ms()
    time.sleep(0.005)
    root, llm, tool = trace("r", 0, status="ERROR", answer="new answer").spans
    fixed = trace("r", 0, status="ERROR", answer="new answer").model_copy(update={"spans": [root, llm]})
    renamed_tool = tool.model_copy(update={"span_id": "r-tool-2"})
    first = store.write_traces([fixed], replace_before_ms=before)
    assert (first.spans_new, first.spans_updated, first.spans_unchanged) == (2, 0, 0)
    loaded = reopen().traces.load_trace("r")
    assert loaded is not None
    assert (sorted(s.span_id for s in loaded.spans), loaded.status) == (["r-llm", "r-root"], "ERROR")
    assert "new answer" in (loaded.response or "")
    assert reopen().traces.stats()["judges"] == []
    # A later batch of the same load (no root) is merged with the first, not replacing it.
    store.write_traces([fixed.model_copy(update={"spans": [renamed_tool]})], replace_before_ms=before)
    loaded = reopen().traces.load_trace("r")
    assert loaded is not None and sorted(s.span_id for s in loaded.spans) == ["r-llm", "r-root", "r-tool-2"]
    assert loaded.status == "ERROR"
    assert counts(reopen()) == (2, 6)  # "other" untouched
    page = store.search(None, [], limit=10, after=None, now_ms=BASE_MS, count_cap=100)
    assert sorted((r.trace_id, r.span_count) for r in page.rows) == [("other", 3), ("r", 3)]


def test_pieces_sent_as_one_trace_add_up_to_the_row_a_whole_export_gets(
        empty_backend: Backend, reopen: Callable[[], Backend]) -> None:
    """The trace row is re-derived from every span, not from the last piece: token sums over all the
    model spans, the root's name and status, counts, tools."""
    whole = trace("sum", 0, tool_status="ERROR")
    root, llm, tool = whole.spans
    second_llm = llm.model_copy(update={"span_id": "sum-llm-2", "start_time_ns": llm.start_time_ns + 1,
                                        "input_tokens": 7, "output_tokens": 3})
    pieces = [[llm], [second_llm, tool], [root]]
    for spans in pieces:  # each piece states no totals of its own, as an OTLP request's would not
        empty_backend.traces.write_traces([whole.model_copy(update={
            "spans": spans, "input_tokens": None, "output_tokens": None})])
    loaded = reopen().traces.load_trace("sum")
    assert loaded is not None and (loaded.input_tokens, loaded.output_tokens) == (127, 33)
    page = reopen().traces.search(None, [], limit=5, after=None, now_ms=BASE_MS, count_cap=10)
    assert [(r.trace_id, r.span_count, r.error_count, r.status, r.name, r.input_tokens, r.tool_names)
            for r in page.rows] == [("sum", 4, 1, "OK", "support_agent", 127, ["lookup_order"])]


@pytest.mark.parametrize("engine", ["chdb", "clickhouse"], indirect=True)
def test_a_piece_another_writer_stored_meanwhile_is_counted_in_the_row(
        empty_backend: Backend, reopen: Callable[[], Backend]) -> None:
    """Two receivers behind one load balancer: writer B stores a piece of the trace between writer A's
    read of the stored spans and A's insert. A's row must still count B's piece."""
    from server.storage.clickhouse.writer import write_traces

    whole = trace("race", 0)
    root, llm, tool = whole.spans
    store = empty_backend.traces
    store.write_traces([whole.model_copy(update={"spans": [root]})])
    real = store.client  # type: ignore[attr-defined]

    class OtherWriterFirst:
        """The real client, but writer B's batch lands just before A's spans are inserted."""

        def __init__(self) -> None:
            self.done = False

        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def insert(self, table: str, rows: list, columns: tuple) -> None:
            if table == "spans" and not self.done:
                self.done = True
                write_traces(real, [whole.model_copy(update={"spans": [tool]})], now_ms=BASE_MS)
            real.insert(table, rows, columns)

    write_traces(OtherWriterFirst(), [whole.model_copy(update={"spans": [llm]})], now_ms=BASE_MS)  # type: ignore[arg-type]
    page = reopen().traces.search(None, [], limit=5, after=None, now_ms=BASE_MS, count_cap=10)
    assert [(r.trace_id, r.span_count, r.input_tokens, r.tool_names) for r in page.rows] == [
        ("race", 3, 120, ["lookup_order"])]


def test_two_pieces_of_one_trace_in_one_batch_keep_both(empty_backend: Backend) -> None:
    """A batch can hold two requests of the same trace (group commit, or two files in one load)."""
    children, with_root = _pieces()
    outcome = empty_backend.traces.write_traces([children, with_root])
    assert (outcome.traces, outcome.spans_new) == (1, 3)
    loaded = empty_backend.traces.load_trace("late")
    assert loaded is not None and sorted(s.span_id for s in loaded.spans) == ["late-llm", "late-root", "late-tool"]
    assert (loaded.timestamp_ms, loaded.status) == (BASE_MS - 86_400_000, "OK")
