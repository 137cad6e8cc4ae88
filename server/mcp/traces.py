"""MCP tools for observing traces: describe_store, search_traces, get_trace, tag_trace, untag_trace, query_sql."""

from __future__ import annotations

from typing import TypeVar

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import InputRequiredResult
from pydantic import BaseModel

from server.errors import surface_errors, surface_errors_async
from server.mcp import confirm
from server.mcp.annotations import DESTRUCTIVE, IDEMPOTENT_WRITE, READ_ONLY
from server.mcp.grammar import FilterArg
from server.storage.backend import Backend
from tools import clock
from tools.privacy import outputs, switches
from tools.traces import describe, search, tagging, view
from tools.traces import sql as sql_tool
from tools.traces.search import Limit, OrderBy, PageToken
from tools.traces.tagging import SelectFilter, TagKey, TagValue, TraceIds

M = TypeVar("M", bound=BaseModel)


def redacted_read(result: M) -> M:
    """With TRACESIEVE_REDACT_READS=1 a read result leaves with its PII redacted (see tools/privacy/switches.py)."""
    if not switches.reads_redacted():
        return result
    return outputs.redact_model(result)[0]


#: query_sql's description on a ClickHouse store: the dialect differs, the views keep their names.
CLICKHOUSE_SQL = """Run one read-only SQL SELECT in ClickHouse SQL over the trace store for aggregate questions the
other tools do not answer: error rate by day, latency percentiles by span type, token totals by model.

Views trace_unified (one row per trace; tags is a Map: tags['environment']) and otel_spans (one row per span);
tables traces, spans, tags, tag_history. ClickHouse functions: count(), quantile(0.95)(duration_ms),
toStartOfDay(request_time). Writes, settings, files and the network are refused, and the query runs under time
and size limits. Returns columns and at most `limit` rows (`truncated` says if more existed).
Example: SELECT span_type, count(), quantile(0.95)(duration_ms) FROM otel_spans GROUP BY 1 ORDER BY 3 DESC
"""


#: A tag write selecting more traces than this by filter asks the person first (when the client can ask).
CONFIRM_ABOVE = 100
CONFIRM_SCHEMA = {"type": "object", "properties": {"confirm": {"type": "boolean", "title": "Apply to all of them"}},
                  "required": ["confirm"]}


def register(mcp: MCPServer, backend: Backend) -> None:
    """Add the trace-observing tools to ``mcp``."""
    store = backend.traces

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def describe_store() -> describe.DescribeStoreResult:
        """Summarise the store: counts, time range, statuses, environments, models, span types, tools, tag
        keys and top values, label criteria, judges, and every filter field with an example. Call this first.
        """
        return describe.describe_store(store, sql_tables=list(backend.sql_tables))

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def search_traces(filter: FilterArg = "", order_by: OrderBy = None, limit: Limit = 20,
                      page_token: PageToken = None, fields: search.Fields = None) -> search.SearchTracesResult:
        """Find traces matching a filter, newest first (or by order_by), as compact summaries: id, time,
        status, duration, request/response previews, tags, model, tokens, span/error counts, tools.

        Use it to get ids for get_trace and tag_trace, e.g. filter="span.type = 'TOOL' AND span.status = 'ERROR'"
        (one span has both). `fields` keeps only the columns you need. If `next_page_token` is set, call again
        with it and the same filter/order_by. A bad filter's error names the token and the closest field.
        """
        return redacted_read(search.search_traces(store, search.SearchTracesInput(
            filter=filter, order_by=order_by, limit=limit, page_token=page_token, fields=fields),
            now_ms=clock.now_ms()))

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def get_trace(trace_id: view.TraceId, max_chars: view.MaxChars = 16_000, span_id: view.SpanId = None,
                  field: view.FieldName = "outputs", offset: view.Offset = 0,
                  span_offset: view.SpanOffset = 0,
                  include_attributes: view.IncludeAttributes = False) -> view.GetTraceResult:
        """Read one trace: header (request, response, tags, tokens) and a page of its span tree,
        depth-first (type, name, status, timing, model, tool, tokens, inputs, outputs).

        Text fits max_chars; a cut field ends with a marker naming the call that reads on, e.g.
        "…[truncated: 5120 more chars; next: get_trace(span_id='9f1c', field='outputs', offset=4000)]".
        If `next_span_offset` is set, pass it as span_offset for more spans.
        """
        return redacted_read(view.get_trace(store, view.GetTraceInput(
            trace_id=trace_id, max_chars=max_chars, span_id=span_id, field=field, offset=offset,
            span_offset=span_offset, include_attributes=include_attributes)))

    async def confirmed(ctx: Context, verb: str, key: str, filter: str | None) -> InputRequiredResult | None:
        """Ask the person before a filter writes to more than CONFIRM_ABOVE traces (see ``confirm``)."""
        if not filter or not confirm.can_ask(ctx):
            return None
        found = await anyio.to_thread.run_sync(lambda: search.search_traces(store, search.SearchTracesInput(
            filter=filter, limit=1, fields=["status"]), now_ms=clock.now_ms()))
        if found.total_matches <= CONFIRM_ABOVE:
            return None
        count = f"{found.total_matches:,}{'+' if not found.total_exact else ''}"
        answer = await confirm.ask(ctx, f"confirm-{verb}", f"{verb} '{key}' on {count} traces ({found.filter_explained})?",
                                   CONFIRM_SCHEMA)
        if isinstance(answer, InputRequiredResult):
            return answer
        if answer is None or answer.action != "accept" or not (answer.content or {}).get("confirm"):
            raise ToolError(f"Nothing was changed: the user did not confirm {verb} '{key}' on {count} traces. "
                            "Narrow the filter or pass trace_ids.")
        return None

    @mcp.tool(annotations=IDEMPOTENT_WRITE)
    @surface_errors_async
    async def tag_trace(ctx: Context, key: TagKey, value: TagValue = "true", trace_ids: TraceIds = None,
                        filter: SelectFilter = None) -> tagging.TagResult | InputRequiredResult:
        """Set tag key=value on traces chosen by trace_ids or a filter, to curate (datasets are built from
        tags). Idempotent; a new value replaces the old (kept in history). Over 100 traces by filter: the user
        is asked first. Returns matched/changed counts, `replaced` and `previous_values` (which other values
        it overwrote, with example ids: check before overwriting someone else's curation), unknown ids counted.
        Example: tag_trace(key='eval_candidate', value='error_case', trace_ids=['tr-1','tr-2'])
        """
        inp = tagging.TagTraceInput(trace_ids=trace_ids, filter=filter, key=key, value=value)
        pending = await confirmed(ctx, "set tag", key, inp.filter)
        if pending is not None:
            return pending
        return await anyio.to_thread.run_sync(lambda: tagging.tag_trace(store, inp, by="mcp", now_ms=clock.now_ms()))

    @mcp.tool(annotations=DESTRUCTIVE)
    @surface_errors_async
    async def untag_trace(ctx: Context, key: TagKey, trace_ids: TraceIds = None,
                          filter: SelectFilter = None) -> tagging.TagResult | InputRequiredResult:
        """Remove a tag key from traces chosen by trace_ids or a filter (kept in the tag history).
        Example: untag_trace(key='eval_candidate', trace_ids=['tr-1'])
        """
        inp = tagging.UntagTraceInput(trace_ids=trace_ids, filter=filter, key=key)
        pending = await confirmed(ctx, "remove tag", key, inp.filter)
        if pending is not None:
            return pending
        return await anyio.to_thread.run_sync(lambda: tagging.untag_trace(store, inp, by="mcp", now_ms=clock.now_ms()))

    @mcp.tool(annotations=READ_ONLY, description=None if backend.engine == "duckdb" else CLICKHOUSE_SQL)
    @surface_errors
    def query_sql(sql: sql_tool.SqlText, limit: sql_tool.RowLimit = 100) -> sql_tool.QuerySqlResult:
        """Run one read-only SELECT (DuckDB dialect) for aggregate questions no other tool answers (error rate by day,
        latency percentiles by span type, tokens by model). Writes, temporary objects, ATTACH, COPY, files,
        network and settings are refused; DESCRIBE <table> lists columns. Returns columns and at most `limit`
        rows, cut at ~200k characters (`truncated`/`note` say how to get the rest); slow queries stop at 30 s.
        """
        return sql_tool.query_sql(store, sql_tool.QuerySqlInput(sql=sql, limit=limit))
