"""One page of a trace search, and its match count, read newest-first through widening time windows.

The window policy (sizing, widening, the count-then-page loops) is ``server.storage.time_windows``,
shared with the ClickHouse store; this module is DuckDB's side of it. Each row group's min/max
``timestamp_ms`` lets a time-bounded read skip most of the file, so a window costs a fraction of
the unbounded query and its rows are exactly those of the unbounded query.

The filter is compiled with ``WINDOW_PARAM`` (see ``filter_sql.compile_filter``), so span
conditions read only the spans of the window's traces; the unbounded query binds the smallest
BIGINT. Other orders (duration, tokens, …) cannot be bounded this way and run as one top-N
query, as do searches of small stores, where the whole query costs less than a second round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from server.storage import time_windows
from server.storage.duckdb import filter_sql
from server.storage.duckdb.connection import fetch_dicts
from server.storage.time_windows import UNBOUNDED
from tools.filters.nodes import OrderKey

ROW_COLUMNS = """t.trace_id, t.timestamp_ms, t.execution_time_ms, t.status, t.name,
    left(t.request, 2000) AS request_head, left(t.response, 2000) AS response_head, t.session_id,
    t.user_id, t.model, t.environment, t.prompt_version, t.input_tokens, t.output_tokens,
    t.span_count, t.error_count, t.tool_names, t.tags"""

#: The parameter a search's filter is compiled with: the oldest timestamp a window reads.
WINDOW_PARAM = "window_lower"
#: Below this many traces one unbounded query is cheaper than widening (read when a search starts,
#: so a test can lower it here).
WINDOW_MIN_TRACES = time_windows.WINDOW_MIN_TRACES

_WINDOW = f"t.timestamp_ms >= ${WINDOW_PARAM}"


class TimeWindows(time_windows.TimeWindows):
    """The shared window policy over a DuckDB store's exact time range and trace count."""

    @classmethod
    def of(cls, con: duckdb.DuckDBPyConnection) -> TimeWindows:
        oldest, newest, count = con.execute(
            "SELECT coalesce(min(timestamp_ms), 0), coalesce(max(timestamp_ms), 0), count(*) FROM traces").fetchone()
        return cls(oldest, newest, count, min_traces=WINDOW_MIN_TRACES)


def count_matches(con: duckdb.DuckDBPyConnection, where: str, params: dict[str, Any], cap: int,
                  windows: TimeWindows) -> tuple[int, bool]:
    """``(count, exact)``: the matches, or ``cap`` and False when there are more. Each scan stops
    at the cap, and the first window that holds more than the cap settles it."""
    sql = f"SELECT count(*) FROM (SELECT 1 FROM traces t WHERE {_WINDOW} AND ({where}) LIMIT {int(cap) + 1})"
    return time_windows.count_in_windows(
        lambda lower: con.execute(sql, {**params, WINDOW_PARAM: lower}).fetchone()[0], cap, windows)


newest_first = time_windows.newest_first


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
    return time_windows.page_in_windows(
        lambda lower: fetch_dicts(con.execute(sql, {**params, WINDOW_PARAM: lower})), limit, upper_ms, windows)
