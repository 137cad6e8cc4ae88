"""Traces that arrive in pieces: fold a batch's spans into the spans already stored.

Production spans do not come one whole trace at a time: a ``BatchSpanProcessor`` exports every few
seconds, children before their parents, retries send the same spans again and a collector rotates
its files by size. So a write is an upsert keyed by ``(trace_id, span_id)``: a span sent again
replaces its earlier copy, a stored span the batch does not mention stays, and the trace row is
re-derived from *all* the trace's spans (``server.ingestion.rollup``), in the writer's transaction.

Only the traces that need it come here: ids already stored, or sent more than once in one batch.
New traces (nearly all of a bulk load) keep the writer's set-based fast path.

Trace-level facts a source *stated* (an MLflow trace's state, a test trace's user id) are those that
differ from what its own spans imply; they are kept. A copy that carries the root span re-states the
trace, so its statements replace earlier ones; a piece without the root only adds to them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from server.ingestion.request_text import fill_request
from server.ingestion.rollup import DERIVED_FIELDS, derive_trace_fields, tool_names
from server.storage.duckdb.row_json import row_json
from tools.models import Span
from tools.traces.span_checks import span_problems

__all__ = ["Merged", "merge_traces"]

#: Span columns that describe the span itself (``trace_timestamp_ms`` follows the trace).
_SPAN_CONTENT = ("parent_span_id", "name", "span_type", "start_time_ns", "end_time_ns", "status", "status_message",
                 "inputs", "outputs", "model", "input_tokens", "output_tokens", "tool_name", "attributes", "events")
#: Trace columns that are the source's alone: a later copy's value wins unless it is null.
_SOURCE_FIELDS = ("environment", "source", "source_id")


@dataclass
class Merged:
    """The merged rows of the affected traces, and what merging them stored."""

    traces: list[dict[str, Any]] = field(default_factory=list)
    spans: list[dict[str, Any]] = field(default_factory=list)
    spans_new: int = 0
    spans_updated: int = 0
    spans_unchanged: int = 0
    warnings: list[str] = field(default_factory=list)


def _span(row: dict[str, Any]) -> Span:
    values = {name: row[name] for name in _SPAN_CONTENT}
    values["attributes"] = json.loads(values["attributes"] or "{}")
    values["events"] = json.loads(values["events"] or "[]")
    return Span(span_id=row["span_id"], **values)


def _stated(row: dict[str, Any], spans: list[Span]) -> dict[str, Any]:
    """The trace fields of ``row`` that its own spans do not imply: what the source said itself."""
    derived = derive_trace_fields(spans)
    return {name: row[name] for name in DERIVED_FIELDS if row[name] is not None and row[name] != derived.get(name)}


def _copies(tables: dict[str, pa.Table], ids: set[str]) -> dict[str, list[tuple[dict, list[dict]]]]:
    """Each affected trace's copies in batch order, as (trace row, its span rows). ``to_arrow`` lays
    spans out trace after trace in trace-row order, so ``span_count`` locates each copy's spans."""
    traces, spans = tables["batch_traces"], tables["batch_spans"]
    counts = traces.column("span_count").to_pylist()
    starts = [0, *accumulate(counts)]
    wanted = pc.is_in(traces.column("trace_id"), value_set=pa.array(sorted(ids), pa.string())).to_pylist()
    found: dict[str, list[tuple[dict, list[dict]]]] = {}
    for index, hit in enumerate(wanted):
        if hit:
            row = traces.slice(index, 1).to_pylist()[0]
            span_rows = spans.slice(starts[index], counts[index]).to_pylist()
            found.setdefault(row["trace_id"], []).append((row, span_rows))
    return found


def _stored(con: duckdb.DuckDBPyConnection, ids: list[str]) -> tuple[dict[str, dict], dict[str, list[dict]]]:
    con.execute("CREATE OR REPLACE TEMP TABLE merge_ids AS SELECT unnest($ids::VARCHAR[]) AS trace_id", {"ids": ids})
    cursor = con.execute("SELECT * EXCLUDE (tags) FROM traces WHERE trace_id IN (SELECT trace_id FROM merge_ids)")
    names = [d[0] for d in cursor.description]
    rows = {r[0]: dict(zip(names, r)) for r in cursor.fetchall()}
    cursor = con.execute("SELECT * FROM spans WHERE trace_id IN (SELECT trace_id FROM merge_ids)")
    names = [d[0] for d in cursor.description]
    spans: dict[str, list[dict]] = {}
    for r in cursor.fetchall():
        row = dict(zip(names, r))
        spans.setdefault(row["trace_id"], []).append(row)
    return rows, spans


def merge_traces(con: duckdb.DuckDBPyConnection, tables: dict[str, pa.Table], ids: set[str], *,
                 now_ms: int) -> Merged:
    """The merged trace and span rows for ``ids`` (stored rows folded with the batch's copies).
    The caller deletes the stored rows of ``ids`` and inserts these, in its transaction."""
    stored_rows, stored_spans = _stored(con, sorted(ids))
    merged = Merged()
    for trace_id, copies in _copies(tables, ids).items():
        before = {row["span_id"]: row for row in stored_spans.get(trace_id, [])}
        spans = {span_id: _span(row) for span_id, row in before.items()}
        row = stored_rows.get(trace_id)
        stated = _stated(row, list(spans.values())) if row else {}
        metadata = json.loads(row["metadata"] or "{}") if row else {}
        sent: dict[str, dict] = {}
        for copy, span_rows in copies:
            copy_spans = [_span(r) for r in span_rows]
            own = _stated(copy, copy_spans)
            stated = own if any(not s.parent_span_id for s in copy_spans) else {**stated, **own}
            metadata.update(json.loads(copy["metadata"] or "{}"))
            row = {**(row or {}), **{k: v for k, v in copy.items() if k in _SOURCE_FIELDS and v is not None},
                   "trace_id": trace_id}
            for span_row, span in zip(span_rows, copy_spans):
                sent[span.span_id] = span_row
                spans[span.span_id] = span
        for span_id, span_row in sent.items():
            old = before.get(span_id)
            if old is None:
                merged.spans_new += 1
            elif all(old[name] == span_row[name] for name in _SPAN_CONTENT):
                merged.spans_unchanged += 1
            else:
                merged.spans_updated += 1
        all_spans = list(spans.values())
        fields = {**derive_trace_fields(all_spans), **stated, "metadata": metadata}
        fill_request(fields, all_spans)  # the user's words when no span states them
        metadata = fields.pop("metadata")
        merged.traces.append(_trace_row(row, fields, metadata, all_spans, now_ms))
        merged.spans += [{**_span_row(trace_id, span), "trace_timestamp_ms": fields["timestamp_ms"]}
                         for span in all_spans]
        merged.warnings += span_problems(trace_id, all_spans)
    return merged


def _trace_row(row: dict[str, Any], fields: dict[str, Any], metadata: dict, spans: list[Span],
               now_ms: int) -> dict[str, Any]:
    return {**{name: row.get(name) for name in ("trace_id", *_SOURCE_FIELDS)}, **fields,
            "metadata": row_json(metadata), "span_count": len(spans),
            "error_count": sum(1 for s in spans if s.status == "ERROR"), "tool_names": tool_names(spans),
            "ingested_at_ms": now_ms}


def _span_row(trace_id: str, span: Span) -> dict[str, Any]:
    row = {name: getattr(span, name) for name in ("span_id", *_SPAN_CONTENT)}
    row["attributes"] = row_json(span.attributes)
    row["events"] = row_json(span.events) if span.events else "[]"
    return {"trace_id": trace_id, **row}
