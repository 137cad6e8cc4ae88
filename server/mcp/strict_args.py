"""Refuse unknown tool arguments instead of dropping them.

mcp 2.3 silently drops argument names a tool does not declare. For tracesieve that is a trap:
an agent that writes MLflow's ``filter_string`` instead of ``filter`` would get *every* trace
back, and ``tag_trace`` would tag the wrong set. This server answers with an error that names
the argument and the closest real one instead.
"""

from __future__ import annotations

import difflib
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, InputRequiredResult

#: Names users bring from MLflow's and others' APIs, and what tracesieve calls them.
KNOWN_ALIASES = {"filter_string": "filter", "max_results": "limit", "request_id": "trace_id",
                 "request_ids": "trace_ids", "experiment_ids": None, "run_id_a": "baseline_run"}


class StrictArgumentsServer(MCPServer):
    _parameters: dict[str, list[str]] | None = None

    async def call_tool(self, name: str, arguments: dict[str, Any],
                        context: Context[Any, Any] | None = None) -> CallToolResult | InputRequiredResult:
        if self._parameters is None:
            self._parameters = {tool.name: sorted((tool.input_schema or {}).get("properties", {}))
                                for tool in await self.list_tools()}
        allowed = self._parameters.get(name)
        unknown = sorted(set(arguments) - set(allowed)) if allowed is not None else []
        if unknown:
            raise ToolError(unknown_arguments_message(name, unknown, allowed or []))
        return await super().call_tool(name, arguments, context)


def unknown_arguments_message(tool: str, unknown: list[str], allowed: list[str]) -> str:
    hints = []
    for arg in unknown:
        alias = KNOWN_ALIASES.get(arg)
        close = [alias] if alias in allowed else difflib.get_close_matches(arg, allowed, n=1, cutoff=0.6)
        hints.append(f"'{arg}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    return (f"{tool} has no argument {', '.join(hints)}. Nothing was done. Its arguments are: "
            f"{', '.join(allowed) or '(none)'}.")
