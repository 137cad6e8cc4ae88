"""Reading one trace by the piece over ClickHouse: header, span skeleton, a page of span text, one field.

The ClickHouse twin of ``server.storage.duckdb.trace_read`` (the ``TraceReader`` port in
``tools.traces.ports``). ``spans`` is sorted by ``(trace_id, span_id)`` and stored by column, so
each query here reads only the granules of one trace and only the columns the view shows: the tree
page reads ids, names and times (never ``inputs``/``outputs``), the text of a page of spans comes
back as ``leftUTF8`` prefixes plus ``lengthUTF8`` lengths, and one field's page is a
``substringUTF8`` of one span's column. Lengths and offsets count characters (code points), as
Python slicing and DuckDB's ``left``/``length`` do, so both engines page a field identically.

Every read goes through ``ClickHouseClient.read*``, which reads the replacing tables ``FINAL``.
"""

from __future__ import annotations

import json
from typing import Any

from server.storage.clickhouse.client import ClickHouseClient

_HEADER = """SELECT trace_id, timestamp_ms, execution_time_ms, status, name, session_id, user_id, model,
    environment, prompt_version, input_tokens, output_tokens, source, metadata,
    leftUTF8(request, {head:UInt32}) AS request_head, lengthUTF8(request) AS request_chars,
    leftUTF8(response, {head:UInt32}) AS response_head, lengthUTF8(response) AS response_chars
  FROM traces AS t WHERE t.trace_id = {id:String}"""

_SKELETON = """SELECT span_id, parent_span_id, name, span_type, start_time_ns, end_time_ns, status, status_message,
    model, tool_name, input_tokens, output_tokens
  FROM spans WHERE trace_id = {id:String} ORDER BY start_time_ns, span_id"""

#: A page of spans' text: prefixes and full lengths, and whether a field repeats the trace's own
#: request/response (then the view says so instead of repeating it). The trace row is read once.
#: Prefixes are aliased ``*_head``: in ClickHouse an alias named like its column would shadow it.
_TEXTS = """SELECT s.span_id,
    leftUTF8(s.inputs, {{head:UInt32}}) AS inputs_head, lengthUTF8(s.inputs) AS inputs_chars,
    leftUTF8(s.outputs, {{head:UInt32}}) AS outputs_head, lengthUTF8(s.outputs) AS outputs_chars,
    coalesce(s.inputs = tr.request, 0) AS inputs_is_request,
    coalesce(s.outputs = tr.response, 0) AS outputs_is_response
    {attributes}
  FROM spans AS s
  CROSS JOIN (SELECT request, response FROM traces AS t WHERE t.trace_id = {{id:String}}) AS tr
  WHERE s.trace_id = {{id:String}} AND s.span_id IN {{span_ids:Array(String)}}"""

_TRACE_FIELDS = {"request", "response", "metadata"}
_SPAN_FIELDS = {"inputs", "outputs", "attributes", "events"}
_JSON_FIELDS = {"attributes", "events", "metadata"}


def outline(client: ClickHouseClient, trace_id: str, head: int,
            tags: dict[str, str]) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """``(header, skeleton)`` of one trace, or None; ``tags`` are the trace's (read by the store)."""
    rows = client.read_dicts(_HEADER, {"id": trace_id, "head": head})
    if not rows:
        return None
    row = _unhead(rows[0], ("request", "response"))
    row["tags"] = tags
    row["metadata"] = json.dumps(json.loads(row["metadata"] or "{}"), ensure_ascii=False)
    return row, client.read_dicts(_SKELETON, {"id": trace_id})


def texts(client: ClickHouseClient, trace_id: str, span_ids: list[str], head: int,
          attributes: bool) -> dict[str, dict[str, Any]]:
    """By span id, the text of a page of spans (see ``_TEXTS``); attributes only if asked for."""
    if not span_ids:
        return {}
    sql = _TEXTS.format(attributes=", s.attributes AS attributes_json" if attributes else "")
    rows = client.read_dicts(sql, {"id": trace_id, "head": head, "span_ids": list(dict.fromkeys(span_ids))})
    rows = [_unhead(row, ("inputs", "outputs")) for row in rows]
    for row in rows:
        row["inputs_is_request"] = bool(row["inputs_is_request"])
        row["outputs_is_response"] = bool(row["outputs_is_response"])
        if attributes:   # re-encoded as the view shows them (compact, unicode kept); only this page's spans
            parsed = json.loads(row.pop("attributes_json") or "{}")
            row["attributes"] = json.dumps(parsed, ensure_ascii=False) if parsed else None
    return {row["span_id"]: row for row in rows}


def field_text(client: ClickHouseClient, trace_id: str, span_id: str | None, field: str,
               offset: int, length: int) -> tuple[str, int] | None:
    """``(text[offset:offset+length], len(text))`` of one trace or span field; None if no such span.

    JSON columns are shown indented (spans) or compact (trace metadata), as get_trace always showed
    them, so they are parsed whole: they are one span's, never the trace's.
    """
    if field in _TRACE_FIELDS:
        table, where, params = "traces AS t", "t.trace_id = {id:String}", {"id": trace_id}
    elif field in _SPAN_FIELDS:
        table = "spans"
        where, params = "trace_id = {id:String} AND span_id = {span:String}", {"id": trace_id, "span": span_id or ""}
    else:
        raise ValueError(f"unknown field {field!r}")
    if field in _JSON_FIELDS:
        rows = client.read(f"SELECT {field} FROM {table} WHERE {where}", params)
        if not rows:
            return None
        value = json.loads(rows[0][0] or ("[]" if field == "events" else "{}"))
        text = json.dumps(value, ensure_ascii=False) if field == "metadata" else (
            json.dumps(value, ensure_ascii=False, indent=1) if value else "")
        return text[offset: offset + length], len(text)
    rows = client.read(f"SELECT substringUTF8(coalesce({field}, ''), {{start:UInt64}}, {{len:UInt64}}), "
                       f"lengthUTF8(coalesce({field}, '')) FROM {table} WHERE {where}",
                       {**params, "start": offset + 1, "len": length})
    return None if not rows else (rows[0][0], int(rows[0][1]))


def _unhead(row: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """``row`` with each ``<field>_head`` renamed ``<field>`` (the port's names)."""
    for field in fields:
        row[field] = row.pop(f"{field}_head")
    return row
