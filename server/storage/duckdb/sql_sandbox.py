"""Caller-written SQL, read-only and boxed in.

Two independent walls: the connection is opened read-only with external access, extension
loading and configuration changes disabled (so files, the network and ATTACH are out of reach
whatever the statement is), and only a single SELECT/EXPLAIN statement is accepted at all.
A query that runs longer than the timeout is interrupted.
"""

from __future__ import annotations

import datetime as dt
import decimal
import threading
import uuid
from typing import Any

import duckdb

from server.storage.duckdb.schema import QUERYABLE
from tools.errors import InvalidInputError
from tools.ports import SqlResult

_ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
MAX_CELL_CHARS = 2000


def _plain(value: Any) -> Any:
    """A JSON-safe version of a DuckDB value, long text cut with an explicit marker."""
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
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def check_statement(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """Return the one allowed statement in ``sql`` or raise an error that says what is allowed."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as error:
        raise InvalidInputError(f"SQL does not parse: {error}") from error
    if len(statements) != 1:
        raise InvalidInputError(
            f"query_sql runs exactly one statement; got {len(statements)}. Send one SELECT at a time.")
    kind = statements[0].type
    if kind not in _ALLOWED:
        raise InvalidInputError(
            f"query_sql is read-only: {kind.name} statements are refused. Use SELECT (or EXPLAIN) over "
            f"{', '.join(QUERYABLE)}; change data with the tag_trace / untag_trace tools instead.")
    return sql


def run_query(con: duckdb.DuckDBPyConnection, sql: str, *, limit: int, timeout_s: float = 30.0) -> SqlResult:
    """Run one checked statement on ``con``, which must be the sandboxed read-only connection."""
    check_statement(con, sql)
    timer = threading.Timer(timeout_s, con.interrupt)
    timer.start()
    try:
        cursor = con.execute(sql)
        rows = cursor.fetchmany(limit + 1)
        columns = [d[0] for d in cursor.description or []]
    except duckdb.InterruptException as error:
        raise InvalidInputError(
            f"The query ran longer than {timeout_s:g}s and was stopped. Narrow it with WHERE "
            "(e.g. on timestamp_ms) or aggregate before selecting rows.") from error
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
    truncated = len(rows) > limit
    return SqlResult(columns=columns, rows=[[_plain(v) for v in row] for row in rows[:limit]],
                     truncated=truncated)
