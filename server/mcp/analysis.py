"""MCP tools for the analysis feature: profile_traces and error_patterns.

Thin wrappers: build the typed input, run the logic in ``tools`` against the SQL adapter, return
the pydantic result (published as structured output, with a ``markdown`` rendering inside).
"""

from __future__ import annotations

from mcp.server import MCPServer

from server.errors import surface_errors
from server.mcp.annotations import READ_ONLY
from server.storage.backend import Backend
from tools import clock
from tools.analysis import error_patterns as errors_tool
from tools.analysis import profiling
from server.mcp.grammar import FilterArg



def register(mcp: MCPServer, backend: Backend) -> None:
    """Add profile_traces and error_patterns to ``mcp``."""
    analytics = backend.require_features("profile_traces", "analytics").analytics

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def profile_traces(filter: FilterArg = "", trace_id: profiling.ProfileTraceId = None,
                       group_by: profiling.GroupByText = None, limit: profiling.TopLimit = 10,
                       prices: profiling.Prices = None) -> profiling.ProfileTracesResult:
        """Profile where time, tokens and estimated cost go across the traces a filter selects (or one
        trace): count, error rate, p50/p95/p99, then per span type, name, tool and model: calls, time, self time
        and its share of wall time and of the p95 tail, tokens, cost; optionally by group_by. `findings` first.
        For "why slow or expensive"; error_patterns for failures.
        Example: profile_traces(filter="tags.environment = 'production'", group_by='model')
        """
        return profiling.profile_traces(analytics, profiling.ProfileTracesInput(
            filter=filter, trace_id=trace_id, group_by=group_by, limit=limit, prices=prices), now_ms=clock.now_ms())

    @mcp.tool(annotations=READ_ONLY)
    @surface_errors
    def error_patterns(filter: FilterArg = "", window: errors_tool.WindowText = "24h",
                       anchor: errors_tool.Anchor = "now",
                       limit: errors_tool.PatternLimit = 10) -> errors_tool.ErrorPatternsResult:
        """Compare the error rate of the last `window` with the one before (Fisher exact) and group
        failures by error type, origin and normalised message, with counts, share, first/last seen, example ids
        and a redacted sample input; p50/p95 latency for both windows. For old data use anchor='latest'.
        Examples: error_patterns()  |  error_patterns(filter="tags.environment = 'production'", window='7d')
        """
        return errors_tool.error_patterns(analytics, errors_tool.ErrorPatternsInput(
            filter=filter, window=window, anchor=anchor, limit=limit), now_ms=clock.now_ms())
