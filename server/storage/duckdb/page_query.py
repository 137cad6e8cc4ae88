"""One page of a trace search, and its match count, read newest-first through widening time windows.

Most searches ask for the newest traces that match. A plain ``ORDER BY timestamp_ms DESC
LIMIT n`` makes DuckDB evaluate the filter on every trace in the store (an ``ILIKE`` over a
million requests, a semi-join against every matching span) to keep 21 rows. Traces arrive in
time order, so each row group's min/max ``timestamp_ms`` lets a time-bounded read skip most of
the file: the page is first looked for among the newest traces only, in a window sized to hold
a few pages, and the window widens (by the density of matches seen so far, eightfold if there
were none) until the page is full or the window covers the whole store. The rows are exactly
those of the unbounded query: every row outside the window sorts after every row inside it.
The count works the same way (once a window holds more matches than the cap, the store holds
more too), runs first, and tells the page how dense the matches are.

The filter is compiled with ``WINDOW_PARAM`` (see ``filter_sql.compile_filter``), so span
conditions read only the spans of the window's traces; the unbounded query binds the smallest
BIGINT. Other orders (duration, tokens, …) cannot be bounded this way and run as one top-N
query, as do searches of small stores, where the whole query costs less than a second round trip.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import duckdb

from server.storage.duckdb import filter_sql
from server.storage.duckdb.connection import fetch_dicts
from tools.filters.nodes import OrderKey

ROW_COLUMNS = """t.trace_id, t.timestamp_ms, t.execution_time_ms, t.status, t.name,
    left(t.request, 2000) AS request_head, left(t.response, 2000) AS response_head, t.session_id,
    t.user_id, t.model, t.environment, t.prompt_version, t.input_tokens, t.output_tokens,
    t.span_count, t.error_count, t.tool_names, t.tags"""

#: The parameter a search's filter is compiled with: the oldest timestamp a window reads.
WINDOW_PARAM = "window_lower"
#: The lower bound of the unbounded query.
UNBOUNDED = -(2**63)
#: A page's first window is sized to hold this many pages: of matches at the density the count
#: saw, or of traces if there was no count (later pages).
FIRST_WINDOW_PAGES = 4
#: A count's first window is sized to hold this many times the cap if every trace matched.
FIRST_WINDOW_CAPS = 2
#: How much a window widens when it held no match at all, and at least and at most when it held
#: some (matches cluster in time: traffic has quiet hours, so density is only a rough guide).
WIDEN_FACTOR = 8
MIN_WIDEN_FACTOR = 4
MAX_WIDEN_FACTOR = 16
#: Below this many traces one unbounded query is cheaper than widening.
WINDOW_MIN_TRACES = 50_000

_WINDOW = f"t.timestamp_ms >= ${WINDOW_PARAM}"


class TimeWindows:
    """The store's time range, read once per search, and the density of matches seen so far:
    the count runs first, so the page's first window can be sized to hold a page of matches
    instead of a guess."""

    def __init__(self, oldest: int, newest: int, count: int) -> None:
        self.oldest, self.newest, self.count = oldest, newest, count
        self.matches_per_ms: float | None = None

    @classmethod
    def of(cls, con: duckdb.DuckDBPyConnection) -> TimeWindows:
        oldest, newest, count = con.execute(
            "SELECT coalesce(min(timestamp_ms), 0), coalesce(max(timestamp_ms), 0), count(*) FROM traces").fetchone()
        return cls(oldest, newest, count)

    def top(self, upper_ms: int | None) -> int:
        return self.newest if upper_ms is None else min(self.newest, upper_ms)

    def first(self, needed: int, spread: int, upper_ms: int | None = None) -> int:
        """The lower bound of a first window for ``needed * spread`` matches at the density seen,
        if any, else for ``needed * spread`` evenly spread traces."""
        if self.count < WINDOW_MIN_TRACES:
            return UNBOUNDED
        if self.matches_per_ms:
            span = math.ceil(spread * needed / self.matches_per_ms)
        else:
            span = max(1, (self.newest - self.oldest) * needed * spread // self.count)
        return self._bound(self.top(upper_ms), span)

    def widen(self, lower: int, found: int, needed: int, upper_ms: int | None = None) -> int:
        """The next lower bound after a window that held ``found`` of the ``needed`` matches: sized
        by the density seen so far (with a quarter to spare), ``WIDEN_FACTOR`` wider if none. When
        that density says ``MAX_WIDEN_FACTOR`` would not do, the next read is of the whole store:
        a few more windows would cost as much and still might not."""
        top = self.top(upper_ms)
        if found == 0:
            factor = WIDEN_FACTOR
        else:
            factor = max(MIN_WIDEN_FACTOR, math.ceil(1.25 * needed / found))
            if factor > MAX_WIDEN_FACTOR:
                return UNBOUNDED
        return self._bound(top, (top - lower) * factor)

    def learn(self, lower: int, found: int) -> None:
        """Record that the window from ``lower`` to the newest trace held at least ``found`` matches."""
        span = self.newest - max(lower, self.oldest)
        if found and span > 0:
            self.matches_per_ms = found / span

    def _bound(self, top: int, span: int) -> int:
        return top - span if top - span > self.oldest else UNBOUNDED


def count_matches(con: duckdb.DuckDBPyConnection, where: str, params: dict[str, Any], cap: int,
                  windows: TimeWindows) -> tuple[int, bool]:
    """``(count, exact)``: the matches, or ``cap`` and False when there are more. Each scan stops
    at the cap, and the first window that holds more than the cap settles it."""
    sql = f"SELECT count(*) FROM (SELECT 1 FROM traces t WHERE {_WINDOW} AND ({where}) LIMIT {int(cap) + 1})"
    lower = windows.first(cap + 1, FIRST_WINDOW_CAPS)
    while True:
        n = con.execute(sql, {**params, WINDOW_PARAM: lower}).fetchone()[0]
        windows.learn(lower, n)
        if n > cap:
            return cap, False
        if lower == UNBOUNDED:
            return n, True
        lower = windows.widen(lower, n, cap + 1)


def newest_first(order: Sequence[OrderKey]) -> bool:
    return bool(order) and order[0].descending and order[0].field.column == "timestamp_ms"


def fetch_page(con: duckdb.DuckDBPyConnection, where: str, params: dict[str, Any], order: Sequence[OrderKey],
               *, limit: int, upper_ms: int | None, windows: TimeWindows) -> list[dict[str, Any]]:
    """Up to ``limit + 1`` rows matching ``where`` (alias ``t``) in ``order``; the extra row says
    another page exists. ``upper_ms`` is the newest timestamp the page can hold (the previous
    page's last one), if known."""
    sql = (f"SELECT {ROW_COLUMNS}, {filter_sql.sort_values_select(order, 't')} AS sort_values "
           f"FROM traces t WHERE {_WINDOW} AND ({where}) ORDER BY {filter_sql.compile_order_by(order, 't')} "
           f"LIMIT {int(limit) + 1}")
    if not newest_first(order):
        return fetch_dicts(con.execute(sql, {**params, WINDOW_PARAM: UNBOUNDED}))
    lower = windows.first(limit + 1, FIRST_WINDOW_PAGES, upper_ms)
    while True:
        rows = fetch_dicts(con.execute(sql, {**params, WINDOW_PARAM: lower}))
        if len(rows) > limit or lower == UNBOUNDED:
            return rows
        lower = windows.widen(lower, len(rows), limit + 1, upper_ms)
