"""One page of a ClickHouse trace search, and its match count, read newest-first through widening time windows.

``traces`` is sorted by ``(day, trace_id)``, so ``t.timestamp_ms >= X`` keeps only the granules of
the days from X on; without a bound, ``ORDER BY timestamp_ms DESC LIMIT 21`` over ``FINAL`` reads
every granule of the table (BENCHMARKS.md, "Scale"). The window policy is the one DuckDB uses
(``server.storage.time_windows``): the count first, then the page, each in windows widened until
they hold enough matches or cover the whole store, so the rows, counts and page tokens are exactly
those of the unbounded query.

A window is the filter under ``t.timestamp_ms >= {window_lower:Int64}``; the unbounded read is
exactly the query the store ran before windows. Searches with a span condition are always read
unbounded: ``spans`` is keyed ``(trace_id, span_id)``, so bounding its semi-join by the window's
trace ids still read most of its granules, once per window (0.4x at 10M spans, BENCHMARKS.md).
The store's time range is read from part metadata without ``FINAL`` (``read_estimate``): it only
sizes the windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from server.storage import time_windows
from server.storage.clickhouse import filter_sql
from server.storage.clickhouse.client import ClickHouseClient
from server.storage.time_windows import UNBOUNDED, TimeWindows
from tools.filters.nodes import And, Comparison, Not, Or, OrderKey, SpanExists

ROW_COLUMNS = """t.trace_id, t.timestamp_ms, t.execution_time_ms, t.status, t.name,
    leftUTF8(t.request, 2000) AS request_head, leftUTF8(t.response, 2000) AS response_head, t.session_id,
    t.user_id, t.model, t.environment, t.prompt_version, t.input_tokens, t.output_tokens,
    t.span_count, t.error_count, t.tool_names"""
#: The parameter a window's lower bound is bound to: the oldest timestamp the window reads.
WINDOW_PARAM = "window_lower"
#: Below this many traces one unbounded query is cheaper than widening (read when a search starts,
#: so a test can lower it here).
WINDOW_MIN_TRACES = time_windows.WINDOW_MIN_TRACES


@dataclass(frozen=True)
class Where:
    """A search's condition, and whether it is read in one piece rather than in windows (it reads
    ``spans``, or bounds its own time range)."""

    sql: str
    params: dict[str, Any]
    reads_spans: bool

    @classmethod
    def of(cls, expr: Any, now_ms: int) -> Where:
        sql, params = filter_sql.compile_filter(expr, now_ms=now_ms)
        return cls(sql, params, _reads_spans(expr) or _bounded_below_in_time(expr))

    def after(self, sql: str, params: dict[str, Any]) -> Where:
        """This condition and ``sql`` (a keyset predicate), for the pages after the first."""
        return Where(f"({self.sql}) AND ({sql})", {**self.params, **params}, self.reads_spans)

    def at(self, lower: int) -> tuple[str, dict[str, Any]]:
        """The SQL and parameters of one read from ``lower`` on (``UNBOUNDED``: the whole store)."""
        if lower == UNBOUNDED:
            return self.sql, self.params
        return f"t.timestamp_ms >= {{{WINDOW_PARAM}:Int64}} AND ({self.sql})", {**self.params, WINDOW_PARAM: lower}


def _reads_spans(expr: Any) -> bool:
    if isinstance(expr, SpanExists):
        return True
    if isinstance(expr, (And, Or)):
        return any(_reads_spans(e) for e in expr.items)
    return isinstance(expr, Not) and _reads_spans(expr.item)


def _bounded_below_in_time(expr: Any) -> bool:
    """The filter sets its own lower time bound (``timestamp_ms > …`` as a conjunct): the primary key
    already prunes the unbounded read to that range, and windows inside it would only repeat the rest
    of the condition (a tag set built once per window: 0.7x in the scale bench)."""
    if isinstance(expr, Comparison):
        return expr.field.spec.name == "attributes.timestamp_ms" and expr.op in (">", ">=", "=", "BETWEEN")
    return isinstance(expr, And) and any(_bounded_below_in_time(e) for e in expr.items)


def time_range(client: ClickHouseClient) -> TimeWindows:
    """The store's oldest and newest timestamps and its trace count, as estimated from the parts
    (duplicates and tombstones included; answered from part metadata, no granule read)."""
    oldest, newest, count = client.read_estimate(
        "SELECT coalesce(min(timestamp_ms), 0), coalesce(max(timestamp_ms), 0), count() FROM traces")[0]
    return TimeWindows(int(oldest), int(newest), int(count), min_traces=WINDOW_MIN_TRACES)


def count_matches(client: ClickHouseClient, where: Where, cap: int, windows: TimeWindows) -> tuple[int, bool]:
    """``(count, exact)``: the matches, or ``cap`` and False when there are more."""
    def count(lower: int) -> int:
        sql, params = where.at(lower)
        return int(client.read(f"SELECT count() FROM (SELECT 1 FROM traces AS t WHERE {sql} "
                               f"LIMIT {int(cap) + 1})", params)[0][0])
    return time_windows.count_in_windows(count, cap, windows)


def fetch_page(client: ClickHouseClient, where: Where, order: Sequence[OrderKey], *, limit: int,
               upper_ms: int | None, windows: TimeWindows) -> list[dict[str, Any]]:
    """Up to ``limit + 1`` rows in ``order``; the extra row says another page exists. ``upper_ms``
    is the newest timestamp the page can hold (the previous page's last one), if known."""
    def fetch(lower: int) -> list[dict[str, Any]]:
        sql, params = where.at(lower)
        return client.read_dicts(
            f"SELECT {ROW_COLUMNS}, {filter_sql.sort_values_select(order)} AS sort_values FROM traces AS t "
            f"WHERE {sql} ORDER BY {filter_sql.compile_order_by(order)} LIMIT {int(limit) + 1}", params)
    if not time_windows.newest_first(order):
        return fetch(UNBOUNDED)
    return time_windows.page_in_windows(fetch, limit, upper_ms, windows)


def search_rows(client: ClickHouseClient, expr: Any, order: Sequence[OrderKey], *, limit: int,
                after: dict | None, now_ms: int, count_cap: int | None) -> tuple[list[dict[str, Any]], int | None, bool]:
    """``(rows, total, exact)`` of one search: up to ``limit + 1`` rows after the page token
    ``after``, and the capped match count when ``count_cap`` asks for it (no rows are read when it
    is an exact zero)."""
    where = Where.of(expr, now_ms)
    # A span condition is a pass over ``spans`` (keyed by trace id, not time) that no window shrinks:
    # each window would pay it again, so such searches are one unbounded read (an empty range says so).
    windows = TimeWindows(0, 0, 0) if where.reads_spans else time_range(client)
    total, exact = count_matches(client, where, count_cap, windows) if count_cap else (None, True)
    page_where, upper_ms = where, None
    if after is not None:
        page_where = where.after(*filter_sql.keyset_predicate(order, after["values"], after["trace_id"]))
        if time_windows.newest_first(order) and after["values"][0] is not None:
            upper_ms = int(after["values"][0])
    if (total, exact) == (0, True):
        return [], total, exact
    return fetch_page(client, page_where, order, limit=limit, upper_ms=upper_ms, windows=windows), total, exact
