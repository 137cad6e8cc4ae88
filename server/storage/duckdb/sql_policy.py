"""What caller-written SQL may say: one SELECT over the store's tables and views, nothing else.

The sandboxed connection already keeps files, the network, extensions and settings changes out
of reach; this module is the second wall, and the one that keeps sessions apart. An audit found
``EXPLAIN ANALYZE CREATE TEMP TABLE traces …`` passing a statement-type check (DuckDB calls it an
EXPLAIN) and shadowing the real ``traces`` for every later read, and ``duckdb_databases()`` /
``current_setting()`` showing the store's path and every setting. So the statement is parsed
by DuckDB itself (``json_serialize_sql``) and its tree is walked: every table it reads must be one
of ``QUERYABLE`` (or a CTE of the query), every table function one of a few generators, and no
scalar function may read the catalog, settings or environment. EXPLAIN is judged by the
statement it explains.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import duckdb

from server.storage.duckdb.schema import QUERYABLE
from tools.errors import InvalidInputError

#: Table functions a query may call: generators that read nothing from the store's catalog.
TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest", "json_each", "json_tree"})

#: Scalar functions (and prefixes) that reveal the store's path, settings, environment or catalog,
#: or run SQL from a string (which would skip this check).
DENIED_FUNCTIONS = frozenset({
    "current_setting", "getenv", "current_database", "current_catalog", "current_schema", "current_schemas",
    "query", "query_table", "json_execute_serialized_sql", "json_serialize_sql", "json_deserialize_sql",
    "json_serialize_plan", "which_secret", "sql_auto_complete", "get_current_time_zone",
})
DENIED_PREFIXES = ("duckdb_", "pragma_")

_SCHEMAS = {"", "main"}
_SHOW_KINDS = {"DESCRIBE", "SUMMARY"}
_TABLES = ", ".join(QUERYABLE)


def check_statement(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise ``InvalidInputError`` (saying what is allowed) unless ``sql`` is one permitted read."""
    statement = _single(con, sql)
    if statement.type == duckdb.StatementType.EXPLAIN:
        inner = _explained(sql)
        if not inner or _single(con, inner).type != duckdb.StatementType.SELECT:
            raise InvalidInputError(
                "query_sql refuses EXPLAIN (and EXPLAIN ANALYZE) of anything but a plain SELECT: "
                "EXPLAIN ANALYZE runs the statement. Write EXPLAIN SELECT … or EXPLAIN ANALYZE SELECT ….")
        sql = inner
    elif statement.type != duckdb.StatementType.SELECT:
        raise InvalidInputError(
            f"query_sql is read-only: {statement.type.name} statements are refused (temporary tables, "
            f"views and macros too). Use SELECT (or EXPLAIN SELECT) over {_TABLES}; change data with "
            "the tag_trace / untag_trace tools instead.")
    tree = _tree(con, sql)
    ctes = {name.lower() for name in _cte_names(tree)}
    for node in _nodes(tree):
        _check_node(node, ctes)


def _single(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.Statement:
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as error:
        raise InvalidInputError(f"SQL does not parse: {str(error).splitlines()[0]}") from error
    if len(statements) != 1:
        raise InvalidInputError(
            f"query_sql runs exactly one statement; got {len(statements)}. Send one SELECT at a time.")
    return statements[0]


def _explained(sql: str) -> str:
    """The statement after ``EXPLAIN [ANALYZE] [(options)]`` (empty if there is none)."""
    starts = duckdb.tokenize(sql)
    ends = [pos for pos, _ in starts[1:]] + [len(sql)]
    tokens = [(pos, sql[pos:end].strip()) for (pos, kind), end in zip(starts, ends)
              if kind != duckdb.token_type.comment]
    index = 1  # tokens[0] is EXPLAIN
    if index < len(tokens) and tokens[index][1].upper() in ("ANALYZE", "ANALYSE"):
        index += 1
    if index < len(tokens) and tokens[index][1].startswith("("):
        depth = 0
        while index < len(tokens):
            depth += tokens[index][1].count("(") - tokens[index][1].count(")")
            index += 1
            if depth <= 0:
                break
    return sql[tokens[index][0]:] if index < len(tokens) else ""


def _tree(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    tree = json.loads(con.execute("SELECT json_serialize_sql($sql)", {"sql": sql}).fetchone()[0])
    if tree.get("error"):
        raise InvalidInputError(
            f"query_sql could not check this SELECT ({tree.get('error_message')}). Rewrite it as a plain "
            "SELECT … FROM over the store's tables (PIVOT: use GROUP BY with FILTER).")
    return tree


def _nodes(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in the serialized tree (iteratively: DuckDB's own parser bounds depth)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _cte_names(tree: dict[str, Any]) -> Iterator[str]:
    for node in _nodes(tree):
        for entry in (node.get("cte_map") or {}).get("map", []):
            yield entry["key"]


def _check_node(node: dict[str, Any], ctes: set[str]) -> None:
    kind = node.get("type")
    if kind == "BASE_TABLE":
        name = node.get("table_name", "")
        if node.get("catalog_name") or node.get("schema_name", "") not in _SCHEMAS or (
                name.lower() not in QUERYABLE and name.lower() not in ctes):
            qualified = ".".join(p for p in (node.get("catalog_name"), node.get("schema_name"), name) if p)
            raise InvalidInputError(
                f"query_sql reads only the store's tables and views; '{qualified}' is not one of them. "
                f"Use {_TABLES} (DESCRIBE traces lists a table's columns).")
    elif kind == "SHOW_REF" and node.get("show_type") not in _SHOW_KINDS:
        raise InvalidInputError(
            "query_sql refuses SHOW: it lists the catalog. Use DESCRIBE <table> for columns; the tables "
            f"and views are {_TABLES}.")
    elif kind == "TABLE_FUNCTION":
        name = (node.get("function") or {}).get("function_name", "")
        if name.lower() not in TABLE_FUNCTIONS:
            raise InvalidInputError(
                f"query_sql refuses the table function '{name}()': it reads outside the store's tables "
                f"(catalog, settings, files). Allowed: {', '.join(sorted(TABLE_FUNCTIONS))}; read {_TABLES}.")
    elif node.get("class") == "FUNCTION":
        name = node.get("function_name", "").lower()
        if name in DENIED_FUNCTIONS or name.startswith(DENIED_PREFIXES):
            raise InvalidInputError(
                f"query_sql refuses '{name}()': it reads the server's settings, environment or catalog, "
                "which belong to the operator. Query the trace data instead.")
