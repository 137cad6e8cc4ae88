"""Argument completion for prompts and resource templates, from what exists in the store.

A person typing ``/calibrate_judge`` or ``@dataset://`` in a host gets the real judge names,
criteria, dataset names and versions, tag keys and values, trace and run ids as they type.
"""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer
from mcp.types import Completion

from server.storage.backend import Backend

#: Argument name -> completion kind (see ``completion_sql.QUERIES``).
KINDS = {"dataset": "dataset", "name": "dataset", "version": "version", "judge": "judge",
         "criterion": "criterion", "tag_key": "tag_key", "tag_value": "tag_value", "trace_id": "trace_id",
         "baseline_run": "run_id", "candidate_run": "run_id"}
LIMIT = 100   # the most a completion result may list (MCP spec)


def register(mcp: MCPServer, backend: Backend) -> None:
    """Add the completion handler to ``mcp`` (DuckDB stores, whose completion queries exist so far)."""
    if backend.engine != "duckdb":
        return
    store = backend.traces

    @mcp.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> Completion | None:
        kind = KINDS.get(argument.name)
        if kind is None:
            return None
        known = dict(getattr(context, "arguments", None) or {})
        if kind == "tag_value" and "tag_key" not in known:
            known["tag_key"] = "eval_candidate"   # the prompts' tag key
        values, more = store.completions(kind, argument.value or "", known, LIMIT)
        return Completion(values=values, has_more=more)
