"""profile_traces: where the time, tokens and money of a set of traces go, largest contributors first.

The store aggregates (``ProfileStore.profile_data``, SQL in ``server/storage/duckdb/analytics_sql.py``);
this module validates the request and turns sums into shares; ``profile_report`` writes the
findings and markdown.

Definitions (also in the field descriptions, so an agent reads them in the output schema):

* **Self time** of a span = the instants it was running while none of its children were
  (its duration minus the union of its children's intervals). Where several spans are in that
  state at once (parallel tool calls, overlapping siblings) the instant is split evenly between
  them. So every instant of a trace is counted once: nested spans never count twice, and the
  self times of a trace add up to the time its spans cover (at most its wall time, unless spans
  run past the trace's recorded duration).
* **Share of wall time** of a group = its summed self time / the summed wall time
  (``execution_time_ms``) of the selected traces.
* **Share of p95-tail latency** = the same ratio over only the traces at or above the selection's
  p95 duration: "RETRIEVER is 62% of p95-tail latency" means that in the slowest ~5% of traces,
  62% of the wall time was spent in retriever spans' own work.
* **Tokens** count on the spans that record them, except a span whose direct children also
  record tokens (a roll-up: the children are counted instead).
* **Cost** is an estimate: tokens x a per-model price (USD per 1M tokens) from ``DEFAULT_PRICES``
  or the caller's ``prices``; null when no span in the group has a priced model.
"""

from __future__ import annotations

import difflib
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from tools.filters import parser
from tools.analysis import profile_report
from tools.analysis.common import ratio
from tools.analysis.profile_models import (
    BREAKDOWNS, GroupBy, GroupProfile, ModelPrice, Percentiles, ProfileData, ProfileRequest, ProfileStore,
    ProfileTracesResult, SpanGroupProfile, SpanStatsRow, TailInfo, TokenUsage, GroupRow)
from tools.errors import InvalidInputError, NotFoundError
from tools.traces.search import FilterText, iso_ms

__all__ = ["DEFAULT_PRICES", "GROUP_BY_FIELDS", "GroupBy", "ModelPrice", "ProfileRequest", "ProfileStore",
           "ProfileTracesInput", "ProfileTracesResult", "parse_group_by", "price_table", "profile_traces"]

#: Trace-level groupings: name -> what it groups by (for the error message and the docs).
GROUP_BY_FIELDS: dict[str, str] = {
    "environment": "attributes.environment",
    "model": "the trace's model",
    "prompt_version": "attributes.prompt_version",
    "day": "UTC day of the trace start",
    "hour": "UTC hour of the trace start",
}
TAG_PREFIXES = ("tag:", "tags.")

#: Estimated list prices, USD per 1M tokens (input, output), as published by the vendors in 2025.
#: Estimates only: no cached-token, batch or regional discounts. Callers override with ``prices``.
#: A span's model matches a key when, after dropping any 'provider/.../' path and lower-casing, it
#: equals the key or starts with key + '-' (dated variants); the longest matching key wins.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00), "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00), "gpt-4.1-mini": (0.40, 1.60), "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5": (1.25, 10.00), "gpt-5-mini": (0.25, 2.00), "gpt-5-nano": (0.05, 0.40),
    "o3": (2.00, 8.00), "o4-mini": (1.10, 4.40),
    "claude-opus-4": (15.00, 75.00), "claude-opus-4-1": (15.00, 75.00),
    "claude-sonnet-4": (3.00, 15.00), "claude-sonnet-4-5": (3.00, 15.00),
    "claude-3-7-sonnet": (3.00, 15.00), "claude-3-5-sonnet": (3.00, 15.00),
    "claude-haiku-4-5": (1.00, 5.00), "claude-3-5-haiku": (0.80, 4.00),
    "gemini-2.5-pro": (1.25, 10.00), "gemini-2.5-flash": (0.30, 2.50), "gemini-2.0-flash": (0.10, 0.40),
}

GroupByText = Annotated[str | None, Field(
    description="Also break the selection down by one trace attribute: 'environment', 'model', 'prompt_version', "
                "'day', 'hour' (UTC), or a tag key as 'tag:<key>' (e.g. 'tag:customer_tier'). Omit for no grouping.")]
ProfileTraceId = Annotated[str | None, Field(
    description="Profile this one trace instead of a filter selection (an id from search_traces).")]
TopLimit = Annotated[int, Field(ge=1, le=50, description="Rows per breakdown table (1-50), largest first.")]
Prices = Annotated[dict[str, tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(ge=0)]]] | None, Field(
    description="Model prices in USD per 1M tokens as [input, output], e.g. {'my-finetune': [0.5, 1.5]}; "
                "added to / overriding the built-in estimates (gpt-4o, gpt-5, claude-sonnet-4-5, "
                "gemini-2.5-flash, …).")]


class ProfileTracesInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    filter: FilterText = ""
    trace_id: ProfileTraceId = None
    group_by: GroupByText = None
    limit: TopLimit = 10
    prices: Prices = None


def parse_group_by(text: str | None) -> GroupBy | None:
    """'environment' | 'model' | 'prompt_version' | 'day' | 'hour' | 'tag:<key>' -> GroupBy."""
    if text is None or not text.strip():
        return None
    value = text.strip()
    for prefix in TAG_PREFIXES:
        if value.lower().startswith(prefix):
            key = value[len(prefix):].strip().strip("`")
            if key:
                return GroupBy("tag", key)
    if value.lower() in GROUP_BY_FIELDS:
        return GroupBy(value.lower())
    aliases = {"env": "environment", "prompt": "prompt_version", "attributes.environment": "environment",
               "attributes.model": "model", "attributes.prompt_version": "prompt_version"}
    if value.lower() in aliases:
        return GroupBy(aliases[value.lower()])
    close = difflib.get_close_matches(value.lower(), list(GROUP_BY_FIELDS), n=1, cutoff=0.6)
    guess = f" Did you mean '{close[0]}'?" if close else ""
    raise InvalidInputError(
        f"Unknown group_by {value!r}.{guess} Use one of: {', '.join(GROUP_BY_FIELDS)}, "
        "or a tag key as 'tag:<key>' (e.g. 'tag:customer_tier').")


def price_table(overrides: dict[str, tuple[float, float]] | None) -> tuple[ModelPrice, ...]:
    """Built-in estimates merged with the caller's prices (caller wins), keys lower-cased."""
    merged = {k.lower(): v for k, v in DEFAULT_PRICES.items()}
    merged.update({k.strip().lower(): tuple(v) for k, v in (overrides or {}).items() if k.strip()})
    return tuple(ModelPrice(k, float(v[0]), float(v[1])) for k, v in sorted(merged.items()))


def profile_traces(store: ProfileStore, inp: ProfileTracesInput, *, now_ms: int) -> ProfileTracesResult:
    """Validate, aggregate in the store, then rank and explain. Raises before any I/O on bad input."""
    if inp.trace_id and inp.filter.strip():
        raise InvalidInputError("Give either trace_id (one trace) or filter (a selection), not both. "
                                "To profile one trace inside a filter, pass only trace_id.")
    expr = parser.parse(inp.filter) if not inp.trace_id else None
    group_by = parse_group_by(inp.group_by)
    if inp.trace_id and not store.known_trace_ids([inp.trace_id]):
        close = store.similar_trace_ids(inp.trace_id, 3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else " The store is empty."
        raise NotFoundError(f"No trace with id '{inp.trace_id}'.{hint} Find ids with search_traces.")
    request = ProfileRequest(expr=expr, trace_id=inp.trace_id, group_by=group_by, top=inp.limit,
                             prices=price_table(inp.prices), now_ms=now_ms)
    data = store.profile_data(request)
    selection = (f"trace {inp.trace_id}" if inp.trace_id else
                 parser.explain(expr) if expr is not None else "all traces")
    return _result(data, selection, group_by)


def _span_rows(rows: list[SpanStatsRow], wall_ms: float, tail_wall_ms: float) -> list[SpanGroupProfile]:
    return [SpanGroupProfile(**r.model_dump(exclude={"tail_self_ms"}), share_of_wall=ratio(r.self_ms, wall_ms),
                             share_of_p95_tail=ratio(r.tail_self_ms, tail_wall_ms)) for r in rows]


def _group_rows(rows: list[GroupRow]) -> list[GroupProfile]:
    return [GroupProfile(**r.model_dump(exclude={"top_span_type_self_ms", "wall_ms"}),
                         error_rate=ratio(r.errors, r.traces) or 0.0,
                         top_span_type_share=ratio(r.top_span_type_self_ms, r.wall_ms)) for r in rows]


def _result(data: ProfileData, selection: str, group_by: GroupBy | None) -> ProfileTracesResult:
    o = data.overview
    tables = {dim: _span_rows(data.breakdowns.get(dim, []), o.wall_ms, o.tail_wall_ms) for dim in BREAKDOWNS}
    result = ProfileTracesResult(
        selection=selection, trace_count=o.traces, span_count=o.spans, error_count=o.errors,
        error_rate=ratio(o.errors, o.traces),
        first_trace=iso_ms(o.first_ms), last_trace=iso_ms(o.last_ms),
        latency=Percentiles(p50_ms=o.p50_ms, p95_ms=o.p95_ms, p99_ms=o.p99_ms),
        wall_time_ms=o.wall_ms,
        p95_tail=TailInfo(threshold_ms=o.p95_ms, traces=o.tail_traces, wall_time_ms=o.tail_wall_ms),
        tokens=TokenUsage(input_tokens=o.input_tokens, output_tokens=o.output_tokens,
                          p95_input_tokens_per_trace=o.p95_input_tokens,
                          p95_output_tokens_per_trace=o.p95_output_tokens),
        cost_usd=data.cost_usd, unpriced_models=data.unpriced_models,
        by_span_type=tables["span_type"], by_span_name=tables["span_name"], by_tool=tables["tool"],
        by_model=tables["model"],
        more_rows={dim: n - len(tables[dim]) for dim, n in data.breakdown_sizes.items() if n > len(tables[dim])},
        group_by=group_by.label if group_by else None, groups=_group_rows(data.groups),
        more_groups=max(0, data.group_count - len(data.groups)))
    findings = profile_report.findings(result)
    return result.model_copy(update={"findings": findings, "markdown": profile_report.markdown(result, findings)})
