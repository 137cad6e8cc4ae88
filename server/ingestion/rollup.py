"""The trace row, derived from a trace's spans: the one place that says how.

Readers call ``derive_trace_fields`` on the spans of one file; the writer calls it again on *all*
stored spans of a trace whenever more of them arrive (``server/storage/duckdb/merge.py``), so a
trace received in pieces ends with exactly the row it would have had if it had come whole. A
fallback for a field (say, the request from the first user message when the root has no input)
belongs here, so both paths apply it.

The root is the span with no parent (or the span a parent loop is broken at, see
``tools.traces.span_checks``). A span whose parent has not arrived is not a root: until the real
root is stored the trace is ``IN_PROGRESS``, with no name, request or response of its own, and
its duration is the time its spans cover so far.
"""

from __future__ import annotations

from operator import attrgetter
from typing import Any

from server.ingestion.attributes import trace_field
from tools.models import MODEL_SPAN_TYPES, Span
from tools.traces.span_checks import cycle_breaks

__all__ = ["DERIVED_FIELDS", "derive_trace_fields", "root_span", "tool_names"]

#: The trace fields ``derive_trace_fields`` may set; anything else on a trace row is the source's.
DERIVED_FIELDS = ("timestamp_ms", "execution_time_ms", "status", "name", "request", "response", "model",
                  "input_tokens", "output_tokens", "session_id", "user_id", "prompt_version")
_START = attrgetter("start_time_ns")


def root_span(spans: list[Span]) -> Span | None:
    """The span with no parent (earliest, then longest, if several); ``None`` while it has not arrived."""
    roots = [span for span in spans if not span.parent_span_id]
    if not roots and spans:
        breaks = cycle_breaks(spans)
        roots = [span for span in spans if span.span_id in breaks]
    if not roots:
        return None
    return min(roots, key=lambda span: (span.start_time_ns, -(span.end_time_ns - span.start_time_ns)))


def derive_trace_fields(spans: list[Span], *, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The trace-level fields the spans imply (see the module docstring); ``skip`` names fields the
    caller already knows, which are then not searched for in span attributes."""
    derived: dict[str, Any] = {}
    if not spans:
        return derived
    by_start = sorted(spans, key=_START)
    root = root_span(spans)
    start = by_start[0].start_time_ns
    derived["timestamp_ms"] = start // 1_000_000
    if root is not None:
        derived["execution_time_ms"] = max(0, root.end_time_ns - root.start_time_ns) // 1_000_000
        derived.update(name=root.name or None, request=root.inputs, response=root.outputs,
                       status="ERROR" if root.status == "ERROR" else "OK")
    else:
        derived["execution_time_ms"] = max(0, max(s.end_time_ns for s in spans) - start) // 1_000_000
        derived.update(name=None, request=None, response=None, status="IN_PROGRESS")
    # the first model named and the token sums, over LLM spans only (one pass, no generators)
    model: str | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    for span in by_start:
        if span.span_type in MODEL_SPAN_TYPES:
            if model is None and span.model:
                model = span.model
            if (count := span.input_tokens) is not None:
                tokens_in = count if tokens_in is None else tokens_in + count
            if (count := span.output_tokens) is not None:
                tokens_out = count if tokens_out is None else tokens_out + count
    derived["model"], derived["input_tokens"], derived["output_tokens"] = model, tokens_in, tokens_out
    ordered = ([root] if root else []) + [span for span in by_start if span is not root]
    wanted = {"session_id", "user_id", "prompt_version"} - skip
    for name in wanted:
        derived[name] = None
    for span in ordered:  # look on each span in turn, stopping as soon as everything is found
        if not wanted:
            break
        for name in list(wanted):
            if value := trace_field(span.attributes, name):
                derived[name] = value
                wanted.discard(name)
    return derived


def tool_names(spans: list[Span]) -> list[str]:
    """Distinct tool names in call order: what search results show as the trace's tool path."""
    seen: dict[str, None] = {}
    for span in sorted(spans, key=_START):
        if span.tool_name:
            seen.setdefault(span.tool_name)
    return list(seen)
