"""MCP tools for observing traces: describe_store, search_traces, get_trace, tag_trace, untag_trace, query_sql."""

from __future__ import annotations

from typing import TypeVar

from mcp.server import MCPServer
from pydantic import BaseModel

from server.errors import surface_errors
from server.mcp.annotations import DESTRUCTIVE, IDEMPOTENT_WRITE, READ_ONLY
from server.storage.duckdb.schema import QUERYABLE
from server.storage.duckdb.store import DuckDBTraceStore
from tools import clock
from tools.privacy import outputs, switches
from tools.traces import describe, search, tagging, view
from tools.traces import sql as sql_tool
from tools.traces.search import FilterText, Limit, OrderBy, PageToken
from tools.traces.tagging import SelectFilter, TagKey, TagValue, TraceIds

M = TypeVar("M", bound=BaseModel)


def redacted_read(result: M) -> M:
    """With TRACESIEVE_REDACT_READS=1 a read result leaves with its PII redacted (see tools/privacy/switches.py)."""
    if not switches.reads_redacted():
        return result
    return outputs.redact_model(result)[0]


def register(mcp: MCPServer, store: DuckDBTraceStore) -> None:
    """Add the trace-observing tools to ``mcp``."""

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def describe_store() -> describe.DescribeStoreResult:
        """Summarise the trace store: counts, time range, statuses, environments, models, span types,
        tools, tag keys with their top values, label criteria and judges, plus every field search_traces
        can filter on with an example.

        Call this first to learn what exists and how to ask for it; then use search_traces.
        """
        return describe.describe_store(store, sql_tables=list(QUERYABLE))

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def search_traces(filter: FilterText = "", order_by: OrderBy = None, limit: Limit = 20,
                      page_token: PageToken = None) -> search.SearchTracesResult:
        """Find traces matching a filter, newest first (or as order_by says), as compact summaries:
        id, time, status, duration, request/response previews, tags, session, model, tokens, span and
        error counts, tool names.

        Use it to get trace ids for get_trace and tag_trace. Examples of filter:
          attributes.status = 'ERROR' AND attributes.timestamp_ms > now() - 7d
          tags.environment = 'production' AND attributes.execution_time_ms > 5000
          span.type = 'TOOL' AND span.status = 'ERROR'      (one span has both)
          text CONTAINS 'refund' OR tags.eval_candidate IS NOT NULL
        Returns at most `limit` traces and `total_matches` (counted up to a cap; `total_exact` is false
        past it: use query_sql for an exact count); if `next_page_token` is set, call again with it
        (and the same filter/order_by) for the next page. A bad filter returns an error naming the
        offending token and the closest valid field.
        """
        return redacted_read(search.search_traces(store, search.SearchTracesInput(
            filter=filter, order_by=order_by, limit=limit, page_token=page_token), now_ms=clock.now_ms()))

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def get_trace(trace_id: view.TraceId, max_chars: view.MaxChars = 16_000, span_id: view.SpanId = None,
                  field: view.FieldName = "outputs", offset: view.Offset = 0,
                  span_offset: view.SpanOffset = 0,
                  include_attributes: view.IncludeAttributes = False) -> view.GetTraceResult:
        """Read one trace: its header (request, response, tags, tokens) and its span tree in depth-first
        order (type, name, status, timing, model, tool, tokens, inputs, outputs).

        Text is bounded by max_chars (default 16000): a cut field ends with a marker such as
        "…[truncated: 5120 more chars; next: get_trace(span_id='9f1c', field='outputs', offset=4000)]";
        call get_trace again with the same trace_id plus those arguments to read the rest page by page.
        If `next_span_offset` is set, more spans follow: pass it as span_offset.
        Examples: get_trace(trace_id='tr-abc')  |  get_trace(trace_id='tr-abc', span_id='9f1c', field='outputs', offset=4000)
        """
        return redacted_read(view.get_trace(store, view.GetTraceInput(
            trace_id=trace_id, max_chars=max_chars, span_id=span_id, field=field, offset=offset,
            span_offset=span_offset, include_attributes=include_attributes)))

    @mcp.tool(annotations=IDEMPOTENT_WRITE)
    @surface_errors
    def tag_trace(key: TagKey, value: TagValue = "true", trace_ids: TraceIds = None,
                  filter: SelectFilter = None) -> tagging.TagResult:
        """Set a tag key=value on traces, selected by trace_ids or by a search filter.

        Use tags to curate: e.g. key='eval_candidate' value='error_case' | 'slow_response' | 'edge_case';
        datasets are later built from tags. Idempotent: re-tagging with the same value changes nothing; a
        different value replaces the old one (kept in history). Returns how many traces matched and
        changed, and lists ids that do not exist.
        Examples: tag_trace(key='eval_candidate', value='error_case', trace_ids=['tr-1','tr-2'])
                  tag_trace(key='reviewed', value='no', filter="attributes.status = 'ERROR'")
        """
        return tagging.tag_trace(store, tagging.TagTraceInput(
            trace_ids=trace_ids, filter=filter, key=key, value=value), by="mcp", now_ms=clock.now_ms())

    @mcp.tool(annotations=DESTRUCTIVE)
    @surface_errors
    def untag_trace(key: TagKey, trace_ids: TraceIds = None, filter: SelectFilter = None) -> tagging.TagResult:
        """Remove a tag key from traces selected by trace_ids or a search filter.

        The removal is recorded in the tag history. Returns how many traces matched and how many
        actually lost the tag; unknown ids are listed.
        Example: untag_trace(key='eval_candidate', trace_ids=['tr-1'])
        """
        return tagging.untag_trace(store, tagging.UntagTraceInput(trace_ids=trace_ids, filter=filter, key=key),
                                   by="mcp", now_ms=clock.now_ms())

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def query_sql(sql: sql_tool.SqlText, limit: sql_tool.RowLimit = 100) -> sql_tool.QuerySqlResult:
        """Run one read-only SQL SELECT (DuckDB dialect) over the trace store for aggregate questions the
        other tools do not answer: error rate by day, latency percentiles by span type, token totals by model.

        Writes, ATTACH, COPY, extensions, files and the network are refused. Returns columns and at most
        `limit` rows (`truncated` says if more existed); long cells are cut with a marker.
        Example: SELECT environment, count(*), avg(execution_duration_ms) FROM trace_unified GROUP BY 1
        """
        return sql_tool.query_sql(store, sql_tool.QuerySqlInput(sql=sql, limit=limit))
