"""``query_sql`` over ClickHouse: caller-written SQL on a read-only handle with limits.

The wall is ClickHouse's own: a separate client handle whose session has ``readonly = 1`` (no
writes, no DDL, no table functions such as ``file()``/``url()``, and no changing settings back)
and the limits below, set before ``readonly`` locks them. For a server, the same settings travel
with each request, ``readonly`` last; in production also give tracesieve's SQL a user whose
settings profile is read-only with these limits as constraints, and grants on its database only.
Reads of the replacing tables get ``FINAL`` like every other read (``client.with_final``), and
the views ``trace_unified`` / ``otel_spans`` keep the names the DuckDB store uses.
"""

from __future__ import annotations

import re
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError

from server.storage.clickhouse.client import ClickHouseClient, with_final
from server.storage.duckdb.sql_sandbox import _plain as plain_value  # engine-neutral JSON-safe cell values
from tools.errors import InvalidInputError
from tools.ports import SqlResult

#: Rows fetched at most (the tool's limit is at most 1000; one more says "truncated").
MAX_ROWS = 1001
LIMITS: dict[str, Any] = {
    "max_execution_time": 30,
    "max_result_rows": MAX_ROWS,
    "result_overflow_mode": "break",
    "max_result_bytes": 64 * 1024 * 1024,
    "max_rows_to_read": 2_000_000_000,
}
QUERYABLE = ("trace_unified", "otel_spans", "traces", "spans", "tags", "tag_history")


def sandbox_settings() -> dict[str, Any]:
    """The limits, then ``readonly`` (once it is set, no setting can change)."""
    return {**LIMITS, "readonly": 1}


#: How a read starts; anything else is refused up front with the same advice DuckDB's store gives
#: (chdb would otherwise read e.g. ``DELETE FROM traces`` as an implicit ``SELECT DELETE FROM traces``).
_READS = re.compile(r"^(\s*(--[^\n]*(\n|$)|/\*.*?\*/))*\s*(\(\s*)*(SELECT|WITH|EXPLAIN|DESCRIBE|DESC|SHOW)\b",
                    re.IGNORECASE | re.DOTALL)


def run_query(sandbox: ClickHouseClient, sql: str, *, limit: int) -> SqlResult:
    """Run one caller-written statement on ``sandbox`` (a handle opened with ``sandbox_settings``)."""
    if not _READS.match(sql):
        verb = (sql.split() or ["empty"])[0].upper()[:20]
        raise InvalidInputError(
            f"query_sql is read-only: {verb} statements are refused. Use one SELECT over {', '.join(QUERYABLE)} "
            "(ClickHouse SQL); change data with the tag_trace / untag_trace tools instead.")
    try:
        result = sandbox.raw.query(with_final(sql.strip().rstrip(";")), settings=sandbox.per_query_settings)
    except ClickHouseError as error:
        first = str(error).strip().splitlines()[0][:400]
        if "READONLY" in first or "readonly" in first:
            raise InvalidInputError(
                f"query_sql is read-only: {first} Use one SELECT over {', '.join(QUERYABLE)} (ClickHouse SQL); "
                "change data with tag_trace / untag_trace instead.") from error
        if "TIMEOUT_EXCEEDED" in first or "TOO_MANY_ROWS" in first:
            raise InvalidInputError(
                f"The query hit a limit ({first}). Narrow it with WHERE (e.g. on timestamp_ms) or aggregate "
                "before selecting rows.") from error
        raise InvalidInputError(f"SQL error (ClickHouse dialect): {first} Tables and views: "
                                f"{', '.join(QUERYABLE)}.") from error
    rows = result.result_rows
    return SqlResult(columns=list(result.column_names), rows=[[plain_value(v) for v in row] for row in rows[:limit]],
                     truncated=len(rows) > limit)
