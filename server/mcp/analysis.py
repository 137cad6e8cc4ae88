"""MCP tools for the analysis feature: profile_traces and error_patterns.

Thin wrappers: build the typed input, run the logic in ``tools`` against the SQL adapter, return
the pydantic result (published as structured output, with a ``markdown`` rendering inside).
"""

from __future__ import annotations

from mcp.server import MCPServer

from server.errors import surface_errors
from server.mcp.annotations import READ_ONLY
from server.storage.duckdb.analytics_sql import DuckDBAnalytics
from server.storage.duckdb.store import DuckDBTraceStore
from tools import clock
from tools.analysis import error_patterns as errors_tool
from tools.analysis import profiling
from server.mcp.grammar import FilterArg



def register(mcp: MCPServer, store: DuckDBTraceStore) -> None:
    """Add profile_traces and error_patterns to ``mcp``."""
    analytics = DuckDBAnalytics(store)

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def profile_traces(filter: FilterArg = "", trace_id: profiling.ProfileTraceId = None,
                       group_by: profiling.GroupByText = None, limit: profiling.TopLimit = 10,
                       prices: profiling.Prices = None) -> profiling.ProfileTracesResult:
        """Profile where the time, tokens and (estimated) money go across the traces a filter selects, or
        one trace: count, error rate, p50/p95/p99 duration; then per span type (LLM, RETRIEVER, TOOL, AGENT, …),
        span name, tool and model: calls, total/avg/p95 time, self time and its share of wall time and of
        p95-tail latency, tokens in/out with p95, estimated cost. Optionally broken down by group_by.

        Use it for "why is it slow or expensive" questions before opening single traces with get_trace;
        use error_patterns for failures. Self time is the time a span ran while none of its children did
        (parallel spans split it), so nested spans never count twice and shares add up to at most 100%.
        Examples: profile_traces(filter="tags.environment = 'production' AND attributes.timestamp_ms > now() - 7d")
                  profile_traces(trace_id='tr-abc123')
                  profile_traces(filter="attributes.status = 'OK'", group_by='model')
        `findings` names the largest contributors first; `markdown` holds findings and tables; tables are
        cut at `limit` rows (`more_rows` says how many were left out). No match gives trace_count 0.
        """
        return profiling.profile_traces(analytics, profiling.ProfileTracesInput(
            filter=filter, trace_id=trace_id, group_by=group_by, limit=limit, prices=prices), now_ms=clock.now_ms())

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def error_patterns(filter: FilterArg = "", window: errors_tool.WindowText = "24h",
                       anchor: errors_tool.Anchor = "now",
                       limit: errors_tool.PatternLimit = 10) -> errors_tool.ErrorPatternsResult:
        """Compare the error rate of the last `window` with the window before it (Fisher exact test) and
        group the failures behind it by error type, where they started (tool or span name) and normalised
        message (ids, numbers, quotes, paths and URLs folded), each with trace count, share of traffic,
        first/last seen, count in the previous window, example trace ids and a redacted sample input.
        Also p50/p95 latency for both windows.

        Use it for a daily health check or to triage a spike; then open an example with get_trace or tag
        the pattern's traces with tag_trace. For exported or old data pass anchor='latest' (the window
        ends at the newest matching trace instead of now).
        Examples: error_patterns()    (last 24h, all traces)
                  error_patterns(filter="tags.environment = 'production'", window='7d')
                  error_patterns(window='1h', anchor='latest', limit=5)
        `findings` summarises the change and the top patterns; `markdown` has the tables.
        """
        return errors_tool.error_patterns(analytics, errors_tool.ErrorPatternsInput(
            filter=filter, window=window, anchor=anchor, limit=limit), now_ms=clock.now_ms())
