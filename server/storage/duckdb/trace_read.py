"""Reading one trace by the piece: its header, its span skeleton, a page of span text, one field.

``load_trace`` reads every span's inputs, outputs, attributes and events: on a 1,500-span trace
that is tens of megabytes parsed on every call, for a reply that shows a few kilobytes. These
queries read only what ``get_trace`` returns: text arrives as a prefix (``left``) plus its length,
so a long field costs what is shown, not what is stored; the tree's order comes from a skeleton of
ids and start times.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb
import orjson

from server.storage.duckdb.connection import fetch_dicts
from server.storage.duckdb.id_lists import ids_in

_HEADER = """SELECT trace_id, timestamp_ms, execution_time_ms, status, name, session_id, user_id, model,
    environment, prompt_version, input_tokens, output_tokens, source, tags, metadata,
    left(request, $head) AS request, length(request) AS request_chars,
    left(response, $head) AS response, length(response) AS response_chars
  FROM traces WHERE trace_id = $id"""

_SKELETON = """SELECT span_id, parent_span_id, name, span_type, start_time_ns, end_time_ns, status, status_message,
    model, tool_name, input_tokens, output_tokens
  FROM spans WHERE trace_id = $id ORDER BY start_time_ns, span_id"""

#: Span text for a page of spans: a prefix and the full length of each field, and whether the
#: field repeats the trace's own request/response (then the view says so instead of repeating it).
_TEXTS = """SELECT s.span_id,
    left(s.inputs, $head) AS inputs, length(s.inputs) AS inputs_chars,
    left(s.outputs, $head) AS outputs, length(s.outputs) AS outputs_chars,
    s.inputs = (SELECT request FROM traces WHERE trace_id = $id) AS inputs_is_request,
    s.outputs = (SELECT response FROM traces WHERE trace_id = $id) AS outputs_is_response
    {attributes}
  FROM spans s WHERE s.trace_id = $id AND {ids}"""

_TRACE_FIELDS = {"request", "response", "metadata"}
_SPAN_FIELDS = {"inputs", "outputs", "attributes", "events"}
_JSON_FIELDS = {"attributes", "events", "metadata"}


def header(con: duckdb.DuckDBPyConnection, trace_id: str, head: int) -> dict[str, Any] | None:
    rows = fetch_dicts(con.execute(_HEADER, {"id": trace_id, "head": head}))
    if not rows:
        return None
    row = rows[0]
    row["tags"] = orjson.loads(row["tags"]) if row["tags"] else {}
    row["metadata"] = json.dumps(json.loads(row["metadata"] or "{}"), ensure_ascii=False)
    return row


def skeleton(con: duckdb.DuckDBPyConnection, trace_id: str) -> list[dict[str, Any]]:
    return fetch_dicts(con.execute(_SKELETON, {"id": trace_id}))


def texts(con: duckdb.DuckDBPyConnection, trace_id: str, span_ids: list[str], head: int,
          attributes: bool) -> dict[str, dict[str, Any]]:
    if not span_ids:
        return {}
    ids_sql, params = ids_in("s.span_id", span_ids, prefix="sid")
    sql = _TEXTS.format(ids=ids_sql, attributes=", s.attributes" if attributes else "")
    rows = fetch_dicts(con.execute(sql, {**params, "id": trace_id, "head": head}))
    for row in rows:
        if attributes:   # re-encoded as the view shows them (compact, unicode kept); only this page's spans
            parsed = json.loads(row.pop("attributes") or "{}")
            row["attributes"] = json.dumps(parsed, ensure_ascii=False) if parsed else None
    return {row["span_id"]: row for row in rows}


def field_text(con: duckdb.DuckDBPyConnection, trace_id: str, span_id: str | None, field: str,
               offset: int, length: int) -> tuple[str, int] | None:
    """``(text[offset:offset+length], len(text))`` of one trace or span field; None if no such span.

    JSON columns are shown indented (spans) or compact (trace metadata), as get_trace always
    showed them, so they are parsed whole: they are one span's, never the trace's.
    """
    if field in _TRACE_FIELDS:
        table, where, params = "traces", "trace_id = $id", {"id": trace_id}
    elif field in _SPAN_FIELDS:
        table, where, params = "spans", "trace_id = $id AND span_id = $span", {"id": trace_id, "span": span_id}
    else:
        raise ValueError(f"unknown field {field!r}")
    if field in _JSON_FIELDS:
        row = con.execute(f"SELECT {field} FROM {table} WHERE {where}", params).fetchone()
        if row is None:
            return None
        value = json.loads(row[0] or ("[]" if field == "events" else "{}"))
        text = json.dumps(value, ensure_ascii=False) if field == "metadata" else (
            json.dumps(value, ensure_ascii=False, indent=1) if value else "")
        return text[offset: offset + length], len(text)
    row = con.execute(f"SELECT substring(coalesce({field}, ''), $start, $len), length(coalesce({field}, '')) "
                      f"FROM {table} WHERE {where}", {**params, "start": offset + 1, "len": length}).fetchone()
    return None if row is None else (row[0], row[1])
