"""Counts for describe_store that say what they count: rows (spans, labels, scores) *and* traces.

A bare ``count(*)`` over spans labelled "traces" told an agent there were 5,970 CHAT_MODEL
traces in a 3,000-trace store. Each row here is ``(value, rows, distinct traces)``. Span types
are grouped under their canonical name (``tools.span_types``), so a store holding both LLM and
legacy CHAT_MODEL spans reports one model-call bucket.
"""

from __future__ import annotations

from typing import Any

import duckdb

from server.storage.span_type_sql import SPAN_TYPE_SQL

__all__ = ["SPAN_TYPE_SQL", "counts_and_traces"]


def counts_and_traces(con: duckdb.DuckDBPyConnection, table: str, column_sql: str, where_sql: str,
                      limit: int | None = None) -> list[tuple[Any, int, int]]:
    """``(value, rows, distinct traces)`` per value of ``column_sql`` in ``table``, most rows first.

    ``table``, ``column_sql`` and ``where_sql`` are constants from the store, never user text.
    """
    sql = (f"SELECT {column_sql} AS v, count(*) AS c, count(DISTINCT trace_id) FROM {table} {where_sql} "
           f"GROUP BY 1 ORDER BY c DESC, v" + (f" LIMIT {int(limit)}" if limit else ""))
    return [(row[0], int(row[1]), int(row[2])) for row in con.execute(sql).fetchall()]
