"""Newest-first searches read through widening time windows give exactly the unbounded query's
pages, counts and page tokens, on every engine: dense and sparse (widening) matches, span and tag
conditions (DuckDB bounds the span semi-join by the window; ClickHouse reads span conditions
unbounded), keyset paging and a capped count.
The threshold below which a store is read unbounded is lowered instead of writing 50k traces."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from server.storage import time_windows
from server.storage.backend import Backend
from server.storage.clickhouse import page_query as ch_page_query
from server.storage.duckdb import page_query as duck_page_query
from server.storage.factory import build_backend
from tests.contract.conftest import _new_store
from tests.factory import trace
from tools.traces import search as search_module
from tools.traces.search import SearchTracesInput, search_traces

N = 400
NOW = 10**13


@pytest.fixture(scope="module")
def spread(engine: str, tmp_path_factory: pytest.TempPathFactory, chdb_folder) -> Iterator[Backend]:
    """400 traces a minute apart (more than the lowered threshold): every 7th an ERROR, every 5th
    with a failing tool, every 11th tagged ``eval``, only the 5 oldest about a refund, and two
    traces sharing a timestamp so the trace-id tie-break is exercised across a window edge."""
    for url in _new_store(engine, tmp_path_factory.mktemp("windows"), chdb_folder):
        backend = build_backend(url)
        backend.traces.write_traces(
            [trace(f"t{i:04d}", i, status="ERROR" if i % 7 == 0 else "OK", tool_status="ERROR" if i % 5 == 0 else "OK",
                   tags={"environment": "production", **({"eval": "yes"} if i % 11 == 0 else {})},
                   question="I want a refund" if i < 5 else "Where is my order?") for i in range(N)]
            + [trace("t0398b", 398)])
        yield backend


@pytest.fixture
def bounds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every window lower bound a search reads (first windows and widenings), in order."""
    seen: list[int] = []
    first, widen = time_windows.TimeWindows.first, time_windows.TimeWindows.widen

    def spy_first(self, *a, **kw):  # type: ignore[no-untyped-def]
        seen.append(first(self, *a, **kw))
        return seen[-1]

    def spy_widen(self, *a, **kw):  # type: ignore[no-untyped-def]
        seen.append(widen(self, *a, **kw))
        return seen[-1]

    monkeypatch.setattr(time_windows.TimeWindows, "first", spy_first)
    monkeypatch.setattr(time_windows.TimeWindows, "widen", spy_widen)
    return seen


def walk(backend: Backend, flt: str, limit: int, *, windowed: bool,
         monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Every page of a search, as (ids, total, exact, next token), windowed or not."""
    threshold = 1 if windowed else 10**12
    monkeypatch.setattr(duck_page_query, "WINDOW_MIN_TRACES", threshold)
    monkeypatch.setattr(ch_page_query, "WINDOW_MIN_TRACES", threshold)
    pages, token = [], None
    while True:
        r = search_traces(backend.traces, SearchTracesInput(filter=flt, limit=limit, page_token=token), now_ms=NOW)
        pages.append(([t.trace_id for t in r.traces], r.total_matches, r.total_exact, r.next_page_token))
        if (token := r.next_page_token) is None:
            return pages


FILTERS = {
    "": N + 1,
    "attributes.status = 'ERROR'": 58,
    "attributes.request ILIKE '%refund%'": 5,
    "span.type = 'TOOL' AND span.status = 'ERROR'": 80,
    "tags.eval = 'yes'": 37,
    "tags.eval = 'yes' AND attributes.timestamp_ms > 0": 37,   # its own time bound: ClickHouse reads it whole
    "tags.eval = 'yes' OR (span.type = 'TOOL' AND span.status = 'ERROR')": 80 + 37 - 8,
    "NOT span.status = 'ERROR' AND tags.eval IS NULL": 401 - len({i for i in range(N) if i % 5 == 0 or i % 7 == 0}
                                                                 | {i for i in range(N) if i % 11 == 0}),
}


@pytest.mark.parametrize("flt", list(FILTERS))
@pytest.mark.parametrize("limit", [7, 50])
def test_windowed_pages_counts_and_tokens_are_the_unbounded_ones(spread: Backend, engine: str, flt: str,
                                                                 limit: int, bounds: list[int],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    plain = walk(spread, flt, limit, windowed=False, monkeypatch=monkeypatch)
    assert set(bounds) <= {time_windows.UNBOUNDED}, "the unbounded reference read no window"
    bounds.clear()
    windowed = walk(spread, flt, limit, windowed=True, monkeypatch=monkeypatch)
    # ClickHouse reads span conditions, and filters with their own lower time bound, in one piece
    unbounded_here = engine != "duckdb" and ("span." in flt or "timestamp_ms >" in flt)
    if unbounded_here:
        assert set(bounds) <= {time_windows.UNBOUNDED}, "read in one piece, no window"
    elif FILTERS[flt] > time_windows.FIRST_WINDOW_PAGES * (limit + 1):
        assert any(b != time_windows.UNBOUNDED for b in bounds), "the windowed search read at least one window"
    ids = [i for page, *_ in plain for i in page]
    assert len(ids) == len(set(ids)) == FILTERS[flt], "every match once (the reference is not empty or short)"
    assert windowed == plain


def test_sparse_old_matches_are_found_by_widening(spread: Backend, bounds: list[int],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the 5 oldest traces match: the count's first window (twice the cap of the newest traces)
    holds none, so it widens until it reaches them; the pages are the unbounded query's."""
    monkeypatch.setattr(search_module, "COUNT_CAP", 10)
    flt = "attributes.request ILIKE '%refund%'"
    plain = walk(spread, flt, 2, windowed=False, monkeypatch=monkeypatch)
    bounds.clear()
    pages = walk(spread, flt, 2, windowed=True, monkeypatch=monkeypatch)
    assert [p[0] for p in pages] == [["t0004", "t0003"], ["t0002", "t0001"], ["t0000"]] and pages == plain
    assert len(bounds) > 2 and bounds[0] != time_windows.UNBOUNDED, "windows widened from a narrow first one"


def test_a_capped_count_is_settled_inside_a_window(spread: Backend, bounds: list[int],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_module, "COUNT_CAP", 30)
    for flt in ("attributes.status = 'ERROR'", "tags.eval = 'yes'"):
        plain = walk(spread, flt, 20, windowed=False, monkeypatch=monkeypatch)
        bounds.clear()
        windowed = walk(spread, flt, 20, windowed=True, monkeypatch=monkeypatch)
        assert {(p[1], p[2]) for p in windowed} == {(30, False)} and windowed == plain
        assert bounds[0] != time_windows.UNBOUNDED and time_windows.UNBOUNDED not in bounds[:1]
