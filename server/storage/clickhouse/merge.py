"""A trace row re-derived from all its spans, when a batch adds to a trace already stored.

The ClickHouse twin of ``server.storage.duckdb.merge`` (same rules, from ``server.ingestion.rollup``):
an exporter sends a long trace in pieces, so the row of a trace is computed from *every* stored span
plus the batch's, not from the batch alone (token sums, the first model, the request found in a user
message, the time of the earliest span). Trace-level facts a source *stated* (those its own spans do
not imply) are kept; a copy carrying the root span re-states the trace, so its statements replace
earlier ones, while a piece without the root only adds to them. Source fields (environment, source,
source id) take the newest non-null value; metadata keys accumulate.
"""

from __future__ import annotations

import json
from typing import Any

from server.ingestion.request_text import fill_request
from server.ingestion.rollup import DERIVED_FIELDS, derive_trace_fields, tool_names
from tools.models import Span, Trace

#: Span columns that describe the span (everything stored but the trace id and the row version).
SPAN_CONTENT = ("span_id", "parent_span_id", "name", "span_type", "start_time_ns", "end_time_ns", "status",
                "status_message", "inputs", "outputs", "model", "input_tokens", "output_tokens", "tool_name",
                "attributes", "events")
_SOURCE_FIELDS = ("environment", "source", "source_id")


def stored_span(row: dict[str, Any]) -> Span:
    """A ``Span`` from a stored row of ``SPAN_CONTENT`` columns."""
    return Span(**{**{name: row[name] for name in SPAN_CONTENT}, "attributes": json.loads(row["attributes"] or "{}"),
                   "events": json.loads(row["events"] or "[]")})


def _stated(values: dict[str, Any], spans: list[Span]) -> dict[str, Any]:
    """The trace fields in ``values`` that ``spans`` do not imply: what the source said itself."""
    derived = derive_trace_fields(spans)
    return {name: values[name] for name in DERIVED_FIELDS
            if values.get(name) is not None and values[name] != derived.get(name)}


def fold(copies: list[Trace], stored_row: dict[str, Any] | None, stored_spans: list[Span]) -> tuple[dict, list[Span]]:
    """``merged_fields`` of the batch's copies of one trace (pieces sent in one batch), in order."""
    row, spans = stored_row, stored_spans
    for copy in copies:
        row, spans = merged_fields(copy, row, spans)
    assert row is not None
    return row, spans


def merged_fields(t: Trace, stored_row: dict[str, Any] | None, stored_spans: list[Span]) -> tuple[dict, list[Span]]:
    """The trace's fields (``DERIVED_FIELDS``, source fields, ``metadata`` as a dict) and all its spans,
    folding batch copy ``t`` into what is stored (``stored_row``: the trace row, its metadata as JSON
    text, or a previous fold's fields)."""
    spans = {s.span_id: s for s in stored_spans}
    stated = _stated(stored_row, stored_spans) if stored_row else {}
    stored_metadata = (stored_row or {}).get("metadata") or {}
    metadata = dict(json.loads(stored_metadata) if isinstance(stored_metadata, str) else stored_metadata)
    own = _stated({name: getattr(t, name) for name in DERIVED_FIELDS}, t.spans)
    stated = own if any(not s.parent_span_id for s in t.spans) or not t.spans else {**stated, **own}
    metadata.update(t.metadata)
    spans.update({s.span_id: s for s in t.spans})
    all_spans = list(spans.values())
    fields = {**derive_trace_fields(all_spans), **stated, "metadata": metadata}
    fill_request(fields, all_spans)  # the user's words when no span states them
    for name in _SOURCE_FIELDS:
        value = getattr(t, name)
        fields[name] = value if value is not None else (stored_row or {}).get(name)
    return fields, all_spans


def rollup_counts(spans: list[Span]) -> tuple[int, int, list[str]]:
    """``(span_count, error_count, tool_names)`` of a trace's spans."""
    return len(spans), sum(1 for s in spans if s.status == "ERROR"), tool_names(spans)
