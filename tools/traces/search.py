"""search_traces: find traces with the filter language and return compact, paged summaries."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tools import paging
from tools.filters import fields, parser
from tools.ports import TraceRow, TraceStore
from tools.previews import preview

FilterText = Annotated[str, Field(description=fields.describe_grammar())]
OrderBy = Annotated[list[str] | None, Field(
    description="Sort keys, MLflow style: e.g. ['attributes.timestamp_ms DESC'] (the default) or "
                "['attributes.execution_time_ms DESC']. Ties are broken by trace id so pages are stable.")]
Limit = Annotated[int, Field(ge=1, le=200, description="Max traces per page (1-200).")]
#: Matches are counted exactly up to this many (on page 1 only): an agent needs the scale, and an
#: exact count of a million matches would cost a full scan or join on every first page.
COUNT_CAP = 10_000

PageToken = Annotated[str | None, Field(
    description="`next_page_token` from the previous result, with the same filter and order_by; omit for page 1.")]


def iso_ms(timestamp_ms: int | None) -> str | None:
    if timestamp_ms is None:
        return None
    return dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


#: A row lists at most this many tags and tool names (with how many more): one trace with a
#: thousand tags must not crowd out the other rows of a page.
ROW_LIST_CAP = 20
#: A page stops early once its rows hold this many characters of JSON, and its page token points
#: at the last row shown, so nothing is skipped: 200 rows of long previews and tags still fit
#: the 25k-token result budget with room for the rest of the result.
PAGE_CHARS = 55_000

SummaryField = Literal["time", "status", "duration_ms", "name", "request_preview", "response_preview", "tags",
                       "session_id", "user_id", "model", "environment", "input_tokens", "output_tokens",
                       "span_count", "error_span_count", "tool_names"]
Fields = Annotated[list[SummaryField] | None, Field(description=(
    "Only these columns per trace (trace_id is always included), e.g. ['status', 'duration_ms', 'tags'] to "
    "scan many traces cheaply; omit for all."))]


class TraceSummary(BaseModel):
    """One trace, small enough to list 20 at a time (columns left out by `fields` are absent)."""

    trace_id: str
    time: str | None = Field(None, description="Start time, ISO 8601 UTC.")
    status: str | None = None
    duration_ms: int | None = None
    name: str | None = None
    request_preview: str | None = Field(None, description="The user's words, cut at 160 chars ('…' if cut).")
    response_preview: str | None = None
    tags: dict[str, str] | None = Field(None, description=f"At most {ROW_LIST_CAP} tags (see more_tags).")
    more_tags: int | None = Field(None, description="Tags not shown; get_trace shows them all.")
    session_id: str | None = None
    user_id: str | None = None
    model: str | None = None
    environment: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    span_count: int | None = None
    error_span_count: int | None = None
    tool_names: list[str] | None = Field(None, description=f"Tools called, in first-call order (at most "
                                                           f"{ROW_LIST_CAP}).")


def summarize(row: TraceRow, fields: list[str] | None = None) -> TraceSummary:
    tags = dict(list(row.tags.items())[:ROW_LIST_CAP])
    full = dict(
        trace_id=row.trace_id, time=iso_ms(row.timestamp_ms) or "", status=row.status,
        duration_ms=row.execution_time_ms, name=row.name,
        request_preview=preview(row.request_head, is_request=True),
        response_preview=preview(row.response_head, is_request=False), tags=tags,
        more_tags=len(row.tags) - len(tags) or None,
        session_id=row.session_id, user_id=row.user_id, model=row.model, environment=row.environment,
        input_tokens=row.input_tokens, output_tokens=row.output_tokens, span_count=row.span_count,
        error_span_count=row.error_count, tool_names=row.tool_names[:ROW_LIST_CAP])
    if fields is not None:
        wanted = {"trace_id", *fields, *(["more_tags"] if "tags" in fields else [])}
        full = {k: v for k, v in full.items() if k in wanted}
    return TraceSummary(**full)


def fit_page(rows: list[TraceRow], fields: list[str] | None) -> tuple[list[TraceRow], list[TraceSummary]]:
    """The leading rows whose summaries fit ``PAGE_CHARS`` (at least one), with those summaries."""
    kept: list[TraceSummary] = []
    used = 0
    for row in rows:
        summary = summarize(row, fields)
        used += len(summary.model_dump_json(exclude_none=True)) + 1
        if kept and used > PAGE_CHARS:
            break
        kept.append(summary)
    return rows[:len(kept)], kept




class SearchTracesInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    filter: FilterText = ""
    order_by: OrderBy = None
    limit: Limit = 20
    page_token: PageToken = None
    fields: Fields = None


class SearchTracesResult(BaseModel):
    traces: list[TraceSummary]
    total_matches: int = Field(description=f"How many traces match the filter in all, counted on page 1 (later "
                                           f"pages repeat it) and only up to {COUNT_CAP:,}: see total_exact.")
    total_exact: bool = Field(True, description=f"False when there are more than {COUNT_CAP:,} matches: counting "
                                                "stopped there. For an exact count of a large set use query_sql, "
                                                "e.g. SELECT count(*) FROM traces WHERE ...")
    next_page_token: str | None = Field(description="Pass as `page_token` for the next page; null when done.")
    filter_explained: str = Field(description="The filter as tracesieve understood it.")


def search_traces(store: TraceStore, inp: SearchTracesInput, *, now_ms: int) -> SearchTracesResult:
    """Run a validated search. Raises FilterError before any I/O."""
    expr = parser.parse(inp.filter)
    order = parser.parse_order_by(inp.order_by or [])
    query_id = paging.fingerprint(inp.filter.strip(), inp.order_by or [])
    after = paging.decode(inp.page_token, query=query_id) if inp.page_token else None
    clock = after["now_ms"] if after else now_ms
    known_total = after["total"] if after else None
    page = store.search(expr, order, limit=inp.limit, after=after, now_ms=clock,
                        count_cap=COUNT_CAP if known_total is None else None)
    if known_total is not None:
        total, exact = known_total, after["total_exact"]
    else:
        total, exact = page.total_matches or 0, page.total_exact
    rows, summaries = fit_page(page.rows, inp.fields)
    next_token = None
    if (page.has_more or len(rows) < len(page.rows)) and rows:
        last = rows[-1]
        next_token = paging.encode(query=query_id, now_ms=clock, values=last.sort_values, trace_id=last.trace_id,
                                   total=total, total_exact=exact)
    return SearchTracesResult(
        traces=summaries, total_matches=total, total_exact=exact,
        next_page_token=next_token,
        filter_explained=parser.explain(expr) if expr is not None else "all traces")
