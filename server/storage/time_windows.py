"""Newest-first reads through widening time windows: the policy both engines share.

Most searches ask for the newest traces that match. A plain ``ORDER BY timestamp_ms DESC LIMIT n``
makes the engine evaluate the filter on every trace in the store to keep 21 rows. Traces arrive in
time order and both engines can skip data by time (DuckDB: each row group's min/max; ClickHouse:
the ``(day, trace_id)`` primary key), so the page is first looked for among the newest traces only,
in a window sized to hold a few pages, and the window widens (by the density of matches seen so
far, eightfold if there were none) until the page is full or the window covers the whole store.
The rows are exactly those of the unbounded query: every row outside the window sorts after every
row inside it. The count works the same way (once a window holds more matches than the cap, the
store holds more too), runs first, and tells the page how dense the matches are.

This module holds only the engine-independent part: the sizing and widening of windows and the
two loops that walk them. Each engine supplies a function that runs its query for one lower bound
(``UNBOUNDED``: no bound at all) and its own reading of the store's time range.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

from tools.filters.nodes import OrderKey

#: The lower bound that means "the whole store" (the smallest BIGINT).
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

Row = TypeVar("Row")


class TimeWindows:
    """The store's time range, read once per search, and the density of matches seen so far:
    the count runs first, so the page's first window can be sized to hold a page of matches
    instead of a guess. The range may be an estimate (ClickHouse reads it from part metadata):
    the rows never depend on it, only how many windows it takes to find them."""

    def __init__(self, oldest: int, newest: int, count: int, *, min_traces: int = WINDOW_MIN_TRACES) -> None:
        self.oldest, self.newest, self.count = oldest, newest, count
        self.min_traces = min_traces
        self.matches_per_ms: float | None = None

    def top(self, upper_ms: int | None) -> int:
        return self.newest if upper_ms is None else min(self.newest, upper_ms)

    def first(self, needed: int, spread: int, upper_ms: int | None = None) -> int:
        """The lower bound of a first window for ``needed * spread`` matches at the density seen,
        if any, else for ``needed * spread`` evenly spread traces."""
        if self.count < self.min_traces:
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


def newest_first(order: Sequence[OrderKey]) -> bool:
    """Whether a search's order can be read through time windows (newest trace first)."""
    return bool(order) and order[0].descending and order[0].field.column == "timestamp_ms"


def count_in_windows(count: Callable[[int], int], cap: int, windows: TimeWindows) -> tuple[int, bool]:
    """``(count, exact)``: the matches, or ``cap`` and False when there are more. ``count(lower)``
    counts the matches from ``lower`` on, stopping past ``cap``; the first window that holds more
    than the cap settles it."""
    lower = windows.first(cap + 1, FIRST_WINDOW_CAPS)
    while True:
        n = count(lower)
        windows.learn(lower, n)
        if n > cap:
            return cap, False
        if lower == UNBOUNDED:
            return n, True
        lower = windows.widen(lower, n, cap + 1)


def page_in_windows(fetch: Callable[[int], list[Row]], limit: int, upper_ms: int | None,
                    windows: TimeWindows) -> list[Row]:
    """Up to ``limit + 1`` rows, newest first: ``fetch(lower)`` reads them from ``lower`` on, in
    windows widened until ``limit + 1`` are found or the window is the whole store. ``upper_ms`` is
    the newest timestamp the page can hold (the previous page's last one), if known."""
    lower = windows.first(limit + 1, FIRST_WINDOW_PAGES, upper_ms)
    while True:
        rows = fetch(lower)
        if len(rows) > limit or lower == UNBOUNDED:
            return rows
        lower = windows.widen(lower, len(rows), limit + 1, upper_ms)


__all__ = ["FIRST_WINDOW_CAPS", "FIRST_WINDOW_PAGES", "MAX_WIDEN_FACTOR", "MIN_WIDEN_FACTOR", "UNBOUNDED",
           "WIDEN_FACTOR", "WINDOW_MIN_TRACES", "TimeWindows", "count_in_windows", "newest_first",
           "page_in_windows"]
