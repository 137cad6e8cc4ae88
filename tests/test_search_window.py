"""Newest-first pages are read through a widening time window: the pages must be exactly those of
the unbounded query, whether matches are dense, rare or old, and paging must not skip or repeat."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from server.storage.duckdb import page_query
from server.storage.duckdb.store import DuckDBTraceStore
from tests.factory import trace
from tools.traces import search as search_module
from tools.filters.parser import parse_order_by
from tools.traces.search import SearchTracesInput, search_traces

N = 400


@pytest.fixture(autouse=True)
def window_small_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(page_query, "WINDOW_MIN_TRACES", 1)


@pytest.fixture(scope="module")
def spread_store(tmp_path_factory: pytest.TempPathFactory) -> DuckDBTraceStore:
    """400 traces a minute apart; every 7th is an ERROR, every 5th has a failing tool, every 11th
    an ``eval`` tag, the 5 oldest mention a refund, and two traces share a timestamp so the
    trace-id tie-break is exercised across a window edge."""
    path = tmp_path_factory.mktemp("window") / "traces.duckdb"
    traces = [trace(f"t{i:04d}", i, status="ERROR" if i % 7 == 0 else "OK",
                    tool_status="ERROR" if i % 5 == 0 else "OK",
                    tags={"environment": "production", **({"eval": "yes"} if i % 11 == 0 else {})},
                    question="I want a refund" if i < 5 else "Where is my order?") for i in range(N)]
    traces.append(trace("t0398b", 398))
    DuckDBTraceStore(path).write_traces(traces)
    return DuckDBTraceStore(path)


def reference(store: DuckDBTraceStore, where: str) -> list[str]:
    """The ids the filter selects, newest first, by a plain query over the whole table."""
    con = duckdb.connect(str(store.path), read_only=True)
    try:
        return [r[0] for r in con.execute(
            f"SELECT trace_id FROM traces WHERE {where} ORDER BY timestamp_ms DESC, trace_id ASC").fetchall()]
    finally:
        con.close()


def every_page(store: DuckDBTraceStore, flt: str, limit: int) -> tuple[list[str], list[int]]:
    ids, totals, token = [], [], None
    while True:
        result = search_traces(store, SearchTracesInput(filter=flt, limit=limit, page_token=token), now_ms=10**13)
        ids += [t.trace_id for t in result.traces]
        totals.append(result.total_matches)
        token = result.next_page_token
        if token is None:
            return ids, totals


@pytest.mark.parametrize("flt, where", [
    ("", "TRUE"),
    ("attributes.status = 'ERROR'", "status = 'ERROR'"),
    ("attributes.request ILIKE '%refund%'", "request ILIKE '%refund%'"),
    ("attributes.status = 'ERROR' OR attributes.request ILIKE '%refund%'",
     "status = 'ERROR' OR request ILIKE '%refund%'"),
    # the references read the spans and tags tables, not the copies the searches read
    ("span.type = 'TOOL' AND span.status = 'ERROR'",
     "trace_id IN (SELECT trace_id FROM spans WHERE span_type = 'TOOL' AND status = 'ERROR')"),
    ("tags.eval = 'yes'", "trace_id IN (SELECT trace_id FROM tags WHERE key = 'eval' AND value = 'yes')"),
    ("tags.eval = 'yes' OR (span.type = 'TOOL' AND span.status = 'ERROR')",
     "trace_id IN (SELECT trace_id FROM tags WHERE key = 'eval' AND value = 'yes') "
     "OR trace_id IN (SELECT trace_id FROM spans WHERE span_type = 'TOOL' AND status = 'ERROR')"),
    ("NOT span.status = 'ERROR' AND tags.eval IS NULL",
     "trace_id NOT IN (SELECT trace_id FROM spans WHERE status = 'ERROR') "
     "AND trace_id NOT IN (SELECT trace_id FROM tags WHERE key = 'eval')"),
])
@pytest.mark.parametrize("limit", [7, 50])
def test_pages_match_the_unbounded_query(spread_store: DuckDBTraceStore, flt: str, where: str, limit: int) -> None:
    expected = reference(spread_store, where)
    assert expected, "the filter must select something for the comparison to mean anything"
    ids, totals = every_page(spread_store, flt, limit)
    assert ids == expected
    assert set(totals) == {len(expected)}, "later pages repeat page 1's count"


def test_rare_old_matches_are_found_by_widening_the_window(spread_store: DuckDBTraceStore,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    original = page_query.fetch_dicts

    def spy(cursor):  # type: ignore[no-untyped-def]
        rows = original(cursor)
        reads.append(len(rows))
        return rows

    monkeypatch.setattr(page_query, "fetch_dicts", spy)
    flt = "attributes.request ILIKE '%refund%'"
    first = search_traces(spread_store, SearchTracesInput(filter=flt, limit=2), now_ms=10**13)
    assert [t.trace_id for t in first.traces] == ["t0004", "t0003"]
    assert len(reads) == 1, "page 1's count saw how rare the matches are and sized the window by it"
    reads.clear()
    with spread_store.reading() as con:   # no count first: the window starts at a few pages' width
        rows = page_query.fetch_page(con, "t.request ILIKE '%refund%'", {}, parse_order_by([]), limit=2,
                                     upper_ms=None, windows=page_query.TimeWindows.of(con))
    assert [r["trace_id"] for r in rows] == ["t0004", "t0003", "t0002"]
    assert len(reads) > 2, "a first window over the newest traces cannot hold the 5 oldest"


def test_no_page_is_read_when_the_count_found_nothing(spread_store: DuckDBTraceStore,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(page_query, "fetch_page", None)   # calling it would fail
    result = search_traces(spread_store, SearchTracesInput(filter="attributes.request ILIKE '%nowhere%'"),
                           now_ms=10**13)
    assert (result.traces, result.total_matches, result.total_exact) == ([], 0, True)


def test_a_sort_on_another_field_is_not_windowed(spread_store: DuckDBTraceStore) -> None:
    result = search_traces(spread_store, SearchTracesInput(order_by=["attributes.timestamp_ms ASC"], limit=2),
                           now_ms=10**13)
    assert [t.trace_id for t in result.traces] == ["t0000", "t0001"]
    assert not page_query.newest_first([])


def test_an_empty_store_gives_an_empty_page(tmp_path: Path) -> None:
    result = search_traces(DuckDBTraceStore(tmp_path / "empty.duckdb"), SearchTracesInput(), now_ms=10**13)
    assert result.traces == [] and result.total_matches == 0 and result.next_page_token is None


def test_counting_stops_at_the_cap_and_says_so(spread_store: DuckDBTraceStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_module, "COUNT_CAP", 30)
    ids, totals = every_page(spread_store, "attributes.status = 'ERROR'", limit=20)
    assert len(ids) == len(reference(spread_store, "status = 'ERROR'")) > 30, "paging still reaches every match"
    first = search_traces(spread_store, SearchTracesInput(filter="attributes.status = 'ERROR'"), now_ms=10**13)
    assert (first.total_matches, first.total_exact) == (30, False)
    assert set(totals) == {30}
    few = search_traces(spread_store, SearchTracesInput(filter="attributes.request ILIKE '%refund%'"), now_ms=10**13)
    assert (few.total_matches, few.total_exact) == (5, True)


@pytest.mark.parametrize("flt, where", [
    ("span.type = 'TOOL' AND span.status = 'ERROR'",
     "trace_id IN (SELECT trace_id FROM spans WHERE span_type = 'TOOL' AND status = 'ERROR')"),
    ("tags.eval = 'yes'", "trace_id IN (SELECT trace_id FROM tags WHERE key = 'eval' AND value = 'yes')"),
])
def test_a_count_past_the_cap_is_settled_inside_a_window(spread_store: DuckDBTraceStore, flt: str, where: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The count stops in a window once it holds more than the cap, and is exact when it never does."""
    matches = len(reference(spread_store, where))
    monkeypatch.setattr(search_module, "COUNT_CAP", 12)
    first = search_traces(spread_store, SearchTracesInput(filter=flt), now_ms=10**13)
    assert matches > 12 and (first.total_matches, first.total_exact) == (12, False)
    monkeypatch.setattr(search_module, "COUNT_CAP", matches)
    exact = search_traces(spread_store, SearchTracesInput(filter=flt), now_ms=10**13)
    assert (exact.total_matches, exact.total_exact) == (matches, True)
