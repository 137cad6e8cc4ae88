"""``get_trace``'s piecewise reads (``tools.traces.ports.TraceReader``) cut from a whole trace.

Both engines answer each piece with its own query (``server.storage.duckdb.trace_read``,
``server.storage.clickhouse.trace_read``) so a 30 MB trace costs what is shown. This mixin gives
the same answers from ``load_trace``: correct, and as slow as loading the whole trace on every
call. It is kept as the reference the contract suite compares both engines with
(``tests/contract/test_trace_read_contract.py``) and as the baseline ``bench/`` times them against.
"""

from __future__ import annotations

import json
from typing import Any

from tools.models import Trace

_HEADER_COLUMNS = ("trace_id", "timestamp_ms", "execution_time_ms", "status", "name", "session_id", "user_id",
                   "model", "environment", "prompt_version", "input_tokens", "output_tokens", "source")
_SKELETON_COLUMNS = ("span_id", "parent_span_id", "name", "span_type", "start_time_ns", "end_time_ns", "status",
                     "status_message", "model", "tool_name", "input_tokens", "output_tokens")


class WholeTraceReading:
    """Mixin for a store with ``load_trace``: the three ``TraceReader`` reads, each from the whole trace."""

    def load_trace(self, trace_id: str) -> Trace | None:  # provided by the store
        raise NotImplementedError

    def trace_outline(self, trace_id: str, head: int) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        trace = self.load_trace(trace_id)
        if trace is None:
            return None
        header: dict[str, Any] = {column: getattr(trace, column) for column in _HEADER_COLUMNS}
        header["tags"] = dict(trace.tags)
        header["metadata"] = json.dumps(trace.metadata, ensure_ascii=False)
        for field in ("request", "response"):
            text = getattr(trace, field)
            header[field] = None if text is None else text[:head]
            header[f"{field}_chars"] = None if text is None else len(text)
        spans = sorted(trace.spans, key=lambda s: (s.start_time_ns, s.span_id))
        return header, [{column: getattr(span, column) for column in _SKELETON_COLUMNS} for span in spans]

    def span_texts(self, trace_id: str, span_ids: list[str], head: int,
                   attributes: bool) -> dict[str, dict[str, Any]]:
        trace = self.load_trace(trace_id)
        if trace is None or not span_ids:
            return {}
        wanted = set(span_ids)
        found: dict[str, dict[str, Any]] = {}
        for span in trace.spans:
            if span.span_id not in wanted:
                continue
            row: dict[str, Any] = {"span_id": span.span_id}
            for field in ("inputs", "outputs"):
                text = getattr(span, field)
                row[field] = None if text is None else text[:head]
                row[f"{field}_chars"] = None if text is None else len(text)
            row["inputs_is_request"] = span.inputs is not None and span.inputs == trace.request
            row["outputs_is_response"] = span.outputs is not None and span.outputs == trace.response
            if attributes:
                row["attributes"] = json.dumps(span.attributes, ensure_ascii=False) if span.attributes else None
            found[span.span_id] = row
        return found

    def field_text(self, trace_id: str, span_id: str | None, field: str, offset: int,
                   length: int) -> tuple[str, int] | None:
        trace = self.load_trace(trace_id)
        if trace is None:
            return None
        if field in ("request", "response"):
            text = getattr(trace, field) or ""
        elif field == "metadata":
            text = json.dumps(trace.metadata, ensure_ascii=False)
        elif field in ("inputs", "outputs", "attributes", "events"):
            span = next((s for s in trace.spans if s.span_id == span_id), None)
            if span is None:
                return None
            value = getattr(span, field)
            if field in ("attributes", "events"):
                text = json.dumps(value, ensure_ascii=False, indent=1) if value else ""
            else:
                text = value or ""
        else:
            raise ValueError(f"unknown field {field!r}")
        return text[offset: offset + length], len(text)
