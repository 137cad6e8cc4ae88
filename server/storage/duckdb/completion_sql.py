"""Values an MCP client can complete an argument with: names and keys that exist in the store.

Each kind is one query over an existing table; the prefix and any context value are parameters.
"""

from __future__ import annotations

from typing import Any

import duckdb

#: Completion kind -> SQL returning one text column, given $prefix (and $key for tag values).
QUERIES = {
    "dataset": "SELECT DISTINCT name FROM datasets WHERE starts_with(name, $prefix) ORDER BY 1",
    "version": "SELECT DISTINCT CAST(version AS VARCHAR) FROM datasets WHERE name = $name "
               "AND starts_with(CAST(version AS VARCHAR), $prefix) ORDER BY 1",
    "judge": "SELECT DISTINCT name FROM judges WHERE starts_with(name, $prefix) ORDER BY 1",
    "criterion": "SELECT criterion FROM (SELECT criterion FROM labels UNION SELECT criterion FROM judges) "
                 "WHERE starts_with(criterion, $prefix) ORDER BY 1",
    "tag_key": "SELECT DISTINCT key FROM tags WHERE starts_with(key, $prefix) ORDER BY 1",
    "tag_value": "SELECT value FROM tags WHERE key = $key AND starts_with(value, $prefix) "
                 "GROUP BY value ORDER BY count(*) DESC, value",
    "trace_id": "SELECT trace_id FROM traces WHERE starts_with(trace_id, $prefix) ORDER BY timestamp_ms DESC",
    "run_id": "SELECT run_id FROM judge_runs WHERE starts_with(run_id, $prefix) ORDER BY started_at_ms DESC",
}


def candidates(con: duckdb.DuckDBPyConnection, kind: str, prefix: str, context: dict[str, str],
               limit: int) -> tuple[list[str], bool]:
    """Up to ``limit`` values of ``kind`` starting with ``prefix``, and whether more exist."""
    sql = QUERIES[kind]
    params: dict[str, Any] = {"prefix": prefix}
    if "$key" in sql:
        params["key"] = context.get("tag_key", "")
    if "$name" in sql:
        params["name"] = context.get("name") or context.get("dataset", "")
    rows = con.execute(f"{sql} LIMIT {int(limit) + 1}", params).fetchall()
    return [str(r[0]) for r in rows[:limit]], len(rows) > limit
