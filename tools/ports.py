"""Ports: what the application logic in ``tools`` needs from the outside world.

``server`` provides the adapters (``DuckDBTraceStore``). Keeping these as Protocols lets every
tool be tested against the real store while ``tools`` never imports DuckDB.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import BaseModel, Field

from tools.models import Trace


class TraceRow(BaseModel):
    """One trace as a search returns it: columns only, text fields cut to a prefix."""

    trace_id: str
    timestamp_ms: int
    execution_time_ms: int | None
    status: str
    name: str | None
    request_head: str | None = Field(description="The first ~2k characters of the request.")
    response_head: str | None
    session_id: str | None
    user_id: str | None
    model: str | None
    environment: str | None
    prompt_version: str | None
    input_tokens: int | None
    output_tokens: int | None
    span_count: int
    error_count: int
    tool_names: list[str]
    tags: dict[str, str]
    sort_values: list[Any] = Field(default_factory=list, description="Values of the order keys, for paging.")


class SearchPage(BaseModel):
    rows: list[TraceRow]
    has_more: bool
    total_matches: int | None = Field(None, description="Matches counted up to the cap; None when not counted.")
    total_exact: bool = Field(True, description="False when counting stopped at the cap: total_matches is a lower bound.")


class PreviousValue(BaseModel):
    """A value of the tag key that a write replaced (tag) or removed (untag), on how many traces."""

    value: str
    traces: int
    example_trace_ids: list[str] = Field(description="Up to 3 of those traces, in id order.")


class TagChange(BaseModel):
    """Outcome of a batch tag write."""

    matched: int = Field(description="Traces the ids or filter selected.")
    changed: int = Field(description="Traces whose tag was added, changed or removed.")
    unchanged: int = Field(description="Traces that already had that tag value (or lacked the tag).")
    unknown_ids: list[str] = Field(default_factory=list, description="Requested ids not in the store.")
    replaced: int = Field(0, description="Changed traces that had another value before (untag: had any value).")
    previous: list[PreviousValue] = Field(
        default_factory=list, description="Values the changed traces had before (a few, most common first).")


class WriteOutcome(BaseModel):
    """What one write stored, counted against what was there before (never what was read)."""

    traces: int = Field(0, description="Distinct traces written: new ones, and stored ones merged with what arrived.")
    spans_new: int = Field(0, description="Spans the store did not hold before.")
    spans_updated: int = Field(0, description="Spans sent again with different content (the new copy is kept).")
    spans_unchanged: int = Field(0, description="Spans sent again exactly as stored.")
    warnings: list[str] = Field(default_factory=list, description=(
        "Odd spans stored as sent: parent cycles, self-parented spans, negative or reversed times."))


class SqlResult(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    note: str | None = None


class TraceStore(Protocol):
    """The trace store as the tools see it. Filters arrive as parsed ASTs (``tools.filters.parser``)."""

    def write_traces(self, traces: Sequence[Trace], *, replace_before_ms: int | None = None) -> WriteOutcome:
        """Upsert spans by (trace_id, span_id) and re-derive each trace's row from all of its
        stored spans; with ``replace_before_ms``, traces stored before then are replaced whole."""

    def search(self, expr: Any, order: Sequence[Any], *, limit: int, after: dict | None,
               now_ms: int, count_cap: int | None = None) -> SearchPage:
        """A page of matches; with ``count_cap``, also the matches counted up to that many."""

    def load_trace(self, trace_id: str) -> Trace | None: ...

    def known_trace_ids(self, trace_ids: Sequence[str]) -> set[str]: ...

    def similar_trace_ids(self, trace_id: str, limit: int = 3) -> list[str]: ...

    def set_tag(self, *, trace_ids: Sequence[str] | None, expr: Any, key: str, value: str, by: str,
                now_ms: int) -> TagChange: ...

    def remove_tag(self, *, trace_ids: Sequence[str] | None, expr: Any, key: str, by: str,
                   now_ms: int) -> TagChange: ...

    def stats(self) -> dict[str, Any]: ...

    def query_sql(self, sql: str, *, limit: int) -> SqlResult: ...
