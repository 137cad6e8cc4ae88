"""What a profile is made of: the store's sums and percentiles, and the result an agent reads.

Kept apart from ``profiling`` (the logic) and ``profile_report`` (the words) so both can use the
same models without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, Field

@dataclass(frozen=True)
class GroupBy:
    """A validated group_by: a trace attribute, a time bucket, or a tag key."""

    kind: str                    # a GROUP_BY_FIELDS key or "tag"
    tag_key: str | None = None

    @property
    def label(self) -> str:
        return f"tag:{self.tag_key}" if self.kind == "tag" else self.kind


# -- what the store returns (sums and percentiles; shares are computed here) ----------------------

#: Breakdown dimensions, in the order the result lists them.
BREAKDOWNS: tuple[str, ...] = ("span_type", "span_name", "tool", "model")


class TraceOverview(BaseModel):
    traces: int = 0
    spans: int = 0
    errors: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    wall_ms: float = 0.0
    tail_traces: int = 0
    tail_wall_ms: float = 0.0
    input_tokens: int | None = None
    output_tokens: int | None = None
    p95_input_tokens: float | None = None
    p95_output_tokens: float | None = None


class SpanStatsRow(BaseModel):
    """One row of a breakdown (span type, span name, tool or model) as the store aggregates it."""

    key: str
    calls: int = Field(description="Spans in this group.")
    traces: int = Field(description="Traces with at least one such span.")
    errors: int = Field(description="Spans with status ERROR.")
    total_ms: float = Field(description="Sum of span durations (inclusive of children).")
    avg_ms: float = Field(description="Mean span duration (inclusive).")
    p95_ms: float | None = Field(description="95th percentile span duration (inclusive).")
    self_ms: float = Field(description="Self time: running with no child running (parallel spans split the "
                                       "instant evenly), so every instant of a trace is counted once.")
    tail_self_ms: float = 0.0
    input_tokens: int | None = None
    output_tokens: int | None = None
    p95_input_tokens: float | None = Field(None, description="95th percentile input tokens per call.")
    p95_output_tokens: float | None = Field(None, description="95th percentile output tokens per call.")
    cost_usd: float | None = Field(None, description="Estimated USD; null when no call had a priced model.")


class GroupRow(BaseModel):
    group: str | None
    traces: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    wall_ms: float = 0.0
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    top_span_type: str | None = None
    top_span_type_self_ms: float | None = None


class ProfileData(BaseModel):
    overview: TraceOverview
    breakdowns: dict[str, list[SpanStatsRow]] = Field(default_factory=dict)
    breakdown_sizes: dict[str, int] = Field(default_factory=dict, description="Distinct keys per dimension.")
    cost_usd: float | None = None
    unpriced_models: list[str] = Field(default_factory=list)
    groups: list[GroupRow] = Field(default_factory=list)
    group_count: int = 0


# -- the result ---------------------------------------------------------------------------------

class SpanGroupProfile(SpanStatsRow):
    tail_self_ms: float = Field(0.0, exclude=True)
    share_of_wall: float | None = Field(description="self_ms / wall time of all selected traces (0-1).")
    share_of_p95_tail: float | None = Field(
        description="Self time share of wall time within the traces at or above p95 duration (0-1).")


class GroupProfile(BaseModel):
    group: str | None = Field(description="The group value; null = traces without one.")
    traces: int
    errors: int
    error_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    top_span_type: str | None = Field(description="Span type with the most self time in this group.")
    top_span_type_share: float | None = Field(description="Its self time / the group's wall time (0-1).")


class Percentiles(BaseModel):
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class TailInfo(BaseModel):
    threshold_ms: float | None = Field(description="The p95 trace duration; traces at or above it form the tail.")
    traces: int
    wall_time_ms: float


class TokenUsage(BaseModel):
    input_tokens: int | None
    output_tokens: int | None
    p95_input_tokens_per_trace: float | None
    p95_output_tokens_per_trace: float | None


class ProfileTracesResult(BaseModel):
    selection: str = Field(description="What was profiled, in English.")
    trace_count: int
    span_count: int
    error_count: int = Field(description="Traces with status ERROR.")
    error_rate: float | None
    first_trace: str | None = Field(description="Earliest trace start in the selection, ISO 8601 UTC.")
    last_trace: str | None
    latency: Percentiles = Field(description="Trace duration percentiles (linear interpolation).")
    wall_time_ms: float = Field(description="Sum of the selected traces' durations.")
    p95_tail: TailInfo
    tokens: TokenUsage = Field(description="Trace-level token totals and per-trace p95.")
    cost_usd: float | None = Field(description="Estimated USD from per-model prices; null when nothing is priced.")
    unpriced_models: list[str] = Field(description="Models that had tokens but no price (their cost is left out).")
    by_span_type: list[SpanGroupProfile] = Field(description="Largest self time first.")
    by_span_name: list[SpanGroupProfile]
    by_tool: list[SpanGroupProfile]
    by_model: list[SpanGroupProfile]
    more_rows: dict[str, int] = Field(description="Breakdown rows left out by `limit`, per table.")
    group_by: str | None
    groups: list[GroupProfile] = Field(description="Per group_by value: most traces first (day/hour: time order).")
    more_groups: int = Field(description="Groups left out by `limit`.")
    findings: list[str] = Field(default_factory=list, description="The largest contributors first, in sentences.")
    markdown: str = Field("", description="Findings and tables as markdown.")


@dataclass(frozen=True)
class ModelPrice:
    model: str                   # lower-case match key
    input_usd_per_mtok: float
    output_usd_per_mtok: float


@dataclass(frozen=True)
class ProfileRequest:
    """Everything the store needs to aggregate one profile."""

    expr: Any                    # parsed filter (tools.filters.nodes) or None
    trace_id: str | None
    group_by: GroupBy | None
    top: int
    prices: tuple[ModelPrice, ...]
    now_ms: int


class ProfileStore(Protocol):
    """What profile_traces needs from a store; ``server.storage.duckdb.analytics_sql`` implements it in SQL."""

    def profile_data(self, request: ProfileRequest) -> ProfileData: ...

    def known_trace_ids(self, trace_ids: list[str]) -> set[str]: ...

    def similar_trace_ids(self, trace_id: str, limit: int = 3) -> list[str]: ...
