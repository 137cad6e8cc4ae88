"""The MCP surface: one thin tool per ``tools`` function, docstrings written for the model.

Each wrapper only builds the typed input, calls the logic in ``tools`` and returns its pydantic
result (published as structured output). Parameter descriptions are the ``Annotated`` aliases
defined next to the logic, so the MCP schema, the CLI and the code cannot drift apart.
"""

from __future__ import annotations

from mcp.server import MCPServer
from mcp.types import ToolAnnotations

from server import mcp_analysis, mcp_calibration, mcp_datasets, mcp_judges
from server.errors import surface_errors
from server.strict_args import StrictArgumentsServer
from server.storage.duckdb_store import DuckDBTraceStore
from server.storage.schema import QUERYABLE
from tools import clock, describe, search, tagging, traces
from tools import sql as sql_tool
from tools.search import FilterText, Limit, OrderBy, PageToken
from tools.tagging import SelectFilter, TagKey, TagValue, TraceIds

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
IDEMPOTENT_WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True,
                                   open_world_hint=False)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True,
                              open_world_hint=False)

INSTRUCTIONS = """\
tracesieve turns production LLM/agent traces into evaluation assets. The loop, tool by tool:
1. Observe: describe_store (what is here and which fields filter) -> search_traces (MLflow-style filters, e.g.
   attributes.status = 'ERROR' AND tags.environment = 'production') -> get_trace (one trace's span tree; cut
   text ends in a marker naming the call that reads more) -> profile_traces / error_patterns (where time goes,
   what broke) -> query_sql (read-only SQL over trace_unified / otel_spans).
2. Curate: tag_trace (e.g. key 'eval_candidate', value 'error_case') -> build_dataset_from_tags (versioned,
   PII-redacted, optionally stratified) -> get_dataset / diff_datasets / merge_records / set_expectations.
3. Judge: define_judge (rule or LLM) / train_classifier_judge -> run_judges on a dataset@version or a live
   filter + window -> get_run_results(verdict='fail').
4. Calibrate and gate: annotation_queue -> label_trace -> calibration_report (does the judge agree with people?)
   -> compare_runs (did the candidate regress? only calibrated judges gate).
Results are compact and paged: pass next_page_token / offset / span_offset back to continue."""


def build_app(store: DuckDBTraceStore) -> MCPServer:
    """An MCP server over ``store``; every call opens the store only for its own duration."""
    mcp = StrictArgumentsServer("tracesieve", instructions=INSTRUCTIONS)

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
        return search.search_traces(store, search.SearchTracesInput(
            filter=filter, order_by=order_by, limit=limit, page_token=page_token), now_ms=clock.now_ms())

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def get_trace(trace_id: traces.TraceId, max_chars: traces.MaxChars = 16_000, span_id: traces.SpanId = None,
                  field: traces.FieldName = "outputs", offset: traces.Offset = 0,
                  span_offset: traces.SpanOffset = 0,
                  include_attributes: traces.IncludeAttributes = False) -> traces.GetTraceResult:
        """Read one trace: its header (request, response, tags, tokens) and its span tree in depth-first
        order (type, name, status, timing, model, tool, tokens, inputs, outputs).

        Text is bounded by max_chars (default 16000): a cut field ends with a marker such as
        "…[truncated: 5120 more chars; next: get_trace(span_id='9f1c', field='outputs', offset=4000)]";
        call get_trace again with the same trace_id plus those arguments to read the rest page by page.
        If `next_span_offset` is set, more spans follow: pass it as span_offset.
        Examples: get_trace(trace_id='tr-abc')  |  get_trace(trace_id='tr-abc', span_id='9f1c', field='outputs', offset=4000)
        """
        return traces.get_trace(store, traces.GetTraceInput(
            trace_id=trace_id, max_chars=max_chars, span_id=span_id, field=field, offset=offset,
            span_offset=span_offset, include_attributes=include_attributes))

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

    for feature in (mcp_analysis, mcp_datasets, mcp_judges, mcp_calibration):
        feature.register(mcp, store)
    return mcp
