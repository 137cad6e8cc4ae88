"""One page of a trace search, read newest-first through a widening time window.

Most searches ask for the newest traces that match. A plain ``ORDER BY timestamp_ms DESC
LIMIT n`` makes DuckDB evaluate the filter on every trace in the store (an ``ILIKE`` over a
million requests, a join against every tag) to keep 21 rows. Traces arrive in time order, so
each row group's min/max ``timestamp_ms`` lets a time-bounded read skip most of the file: the
page is first looked for among the newest traces only, in a window sized to hold a few pages
if matches were common, and the window widens eightfold until the page is full or the window
covers the whole store. The rows are exactly those of the unbounded query: every row outside
the window sorts after every row inside it.

Other orders (duration, tokens, …) cannot be bounded this way and run as one top-N query, as
do searches of small stores, where the whole top-N costs less than a second round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from server.storage import filter_sql
from server.storage.connection import fetch_dicts
from tools.filter_ast import OrderKey

ROW_COLUMNS = """t.trace_id, t.timestamp_ms, t.execution_time_ms, t.status, t.name,
    left(t.request, 2000) AS request_head, left(t.response, 2000) AS response_head, t.session_id,
    t.user_id, t.model, t.environment, t.prompt_version, t.input_tokens, t.output_tokens,
    t.span_count, t.error_count, t.tool_names"""

#: The first window is sized to hold this many pages if every trace matched.
FIRST_WINDOW_PAGES = 4
WIDEN_FACTOR = 8
#: Below this many traces one unbounded query is cheaper than widening.
WINDOW_MIN_TRACES = 50_000


def count_matches(con: duckdb.DuckDBPyConnection, where: str, params: dict[str, Any],
                  cap: int) -> tuple[int, bool]:
    """``(count, exact)``: the matches, or ``cap`` and False when there are more. The scan stops
    at the cap, so a filter most traces match costs little more than its first row groups."""
    n = con.execute(f"SELECT count(*) FROM (SELECT 1 FROM traces t WHERE {where} LIMIT {int(cap) + 1})",
                    params).fetchone()[0]
    return min(n, cap), n <= cap


def newest_first(order: Sequence[OrderKey]) -> bool:
    return bool(order) and order[0].descending and order[0].field.column == "timestamp_ms"


def fetch_page(con: duckdb.DuckDBPyConnection, where: str, params: dict[str, Any], order: Sequence[OrderKey],
               *, limit: int, upper_ms: int | None) -> list[dict[str, Any]]:
    """Up to ``limit + 1`` rows matching ``where`` (alias ``t``) in ``order``; the extra row says
    another page exists. ``upper_ms`` is the newest timestamp the page can hold (the previous
    page's last one), if known."""
    sql = (f"SELECT {ROW_COLUMNS}, {filter_sql.sort_values_select(order, 't')} AS sort_values "
           f"FROM traces t WHERE {{bound}}({where}) ORDER BY {filter_sql.compile_order_by(order, 't')} "
           f"LIMIT {int(limit) + 1}")
    def bounded(lower: int | None) -> list[dict[str, Any]]:
        if lower is None:
            return fetch_dicts(con.execute(sql.format(bound=""), params))
        return fetch_dicts(con.execute(sql.format(bound="t.timestamp_ms >= $window_lower AND "),
                                       {**params, "window_lower": lower}))

    if not newest_first(order):
        return bounded(None)
    oldest, newest, count = con.execute("SELECT min(timestamp_ms), max(timestamp_ms), count(*) FROM traces").fetchone()
    if count < WINDOW_MIN_TRACES:
        return bounded(None)
    top = newest if upper_ms is None else min(newest, upper_ms)
    span = max(1, (newest - oldest) * (limit + 1) * FIRST_WINDOW_PAGES // count)
    while top - span > oldest:
        rows = bounded(top - span)
        if len(rows) > limit:
            return rows
        span *= WIDEN_FACTOR
    return bounded(None)
