"""Caller-written SQL, read-only, boxed in and bounded.

Three walls: the connection is opened read-only with external access, extension loading and
configuration changes disabled (so files, the network and ATTACH are out of reach whatever the
statement is); ``sql_policy`` accepts only one SELECT over the store's tables; and every call
runs on a cursor of its own (a separate DuckDB connection, closed after the call) that no other
code path uses, so nothing a query leaves in its session outlives it or reaches another reader.

The answer is bounded whatever the query: at most ``limit`` rows, each cell cut at
``MAX_CELL_CHARS`` (nested lists at ``MAX_ITEMS``), and the whole result at ``MAX_RESULT_CHARS``
of JSON text; rows are fetched a few at a time, so a result of 1000 huge rows never sits in
memory at once. A query that runs longer than the timeout (``TRACESIEVE_SQL_TIMEOUT_S``) is
interrupted.
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import threading
import uuid
from typing import Any

import duckdb
import orjson

from server.storage.duckdb.schema import QUERYABLE
from server.storage.duckdb.sql_policy import check_statement
from tools.errors import InvalidInputError
from tools.ports import SqlResult

MAX_CELL_CHARS = 2000
MAX_ITEMS = 50
#: The JSON size of all rows together; an MCP client shows the result to a model, and 100 MB of
#: rows wedged a stdio server for minutes in the audit.
MAX_RESULT_CHARS = 200_000
_FETCH_ROWS = 16


def default_timeout() -> float:
    """Seconds a query may run (``TRACESIEVE_SQL_TIMEOUT_S``, default 30)."""
    return float(os.environ.get("TRACESIEVE_SQL_TIMEOUT_S", "30"))


def _plain(value: Any) -> Any:
    """A JSON-safe version of a DuckDB value, long text and long lists cut with explicit markers."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if len(value) > MAX_CELL_CHARS:
            return value[:MAX_CELL_CHARS] + f"…[truncated {len(value) - MAX_CELL_CHARS} chars]"
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return _plain(value.hex())
    if isinstance(value, dict):
        items = list(value.items())
        plain = {str(k)[:MAX_CELL_CHARS]: _plain(v) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            plain["…"] = f"[truncated {len(items) - MAX_ITEMS} more keys]"
        return plain
    if isinstance(value, list | tuple):
        plain_list = [_plain(v) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            plain_list.append(f"…[truncated {len(value) - MAX_ITEMS} more items]")
        return plain_list
    return _plain(str(value))


def _json_chars(row: list[Any]) -> int:
    return len(orjson.dumps(row, option=orjson.OPT_NON_STR_KEYS))


def run_query(cursor: duckdb.DuckDBPyConnection, sql: str, *, limit: int,
              timeout_s: float | None = None) -> SqlResult:
    """Run one checked statement on ``cursor``: a fresh cursor of the sandboxed read-only connection."""
    check_statement(cursor, sql)
    timeout_s = default_timeout() if timeout_s is None else timeout_s
    timer = threading.Timer(timeout_s, cursor.interrupt)
    timer.daemon = True
    timer.start()
    rows: list[list[Any]] = []
    note = None
    try:
        result = cursor.execute(sql)
        columns = [d[0] for d in result.description or []]
        size = 0
        while note is None and len(rows) <= limit and (chunk := result.fetchmany(_FETCH_ROWS)):
            for raw in chunk:
                row = [_plain(v) for v in raw]
                size += _json_chars(row)
                if size > MAX_RESULT_CHARS and not rows:
                    raise InvalidInputError(
                        f"One row of this result is over {MAX_RESULT_CHARS:,} characters even with cells cut "
                        f"at {MAX_CELL_CHARS}. Select fewer columns.")
                if size > MAX_RESULT_CHARS:
                    note = (f"Rows stopped at {len(rows)}: the result passed {MAX_RESULT_CHARS:,} characters. "
                            "Select fewer or shorter columns (left(col, 200)), aggregate, or page with "
                            "ORDER BY … LIMIT/OFFSET.")
                    break
                rows.append(row)
                if len(rows) > limit:
                    break
    except duckdb.InterruptException as error:
        raise InvalidInputError(
            f"The query ran longer than {timeout_s:g}s and was stopped. Narrow it with WHERE "
            "(e.g. on timestamp_ms) or aggregate before selecting rows.") from error
    except duckdb.OutOfMemoryException as error:
        raise InvalidInputError(
            f"The query needed more memory (or temporary disk) than the server allows: "
            f"{str(error).splitlines()[0]} Aggregate or filter before joining or sorting.") from error
    except (duckdb.PermissionException, duckdb.InvalidInputException) as error:
        raise InvalidInputError(
            f"Refused: {str(error).splitlines()[0]} query_sql can only read the store's tables "
            f"and views ({', '.join(QUERYABLE)}); files, the network and extensions are off.") from error
    except duckdb.Error as error:
        first = str(error).splitlines()[0]
        raise InvalidInputError(
            f"SQL error: {first} Tables and views: {', '.join(QUERYABLE)}.") from error
    finally:
        timer.cancel()
    if len(rows) > limit:
        rows = rows[:limit]
        note = note or f"More rows existed than limit={limit}; add LIMIT/aggregate or raise limit."
    return SqlResult(columns=columns, rows=rows, truncated=note is not None, note=note)
