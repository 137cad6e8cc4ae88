"""MCP logging: a line to the client for each tool call, at the level the client asked for.

Hosts show these in their MCP log panel (the MCP Inspector's notifications pane), which is where a
person looks when an agent's call did something unexpected: which tool ran, its summary, and a
warning when a result was cut to fit the budget. Handshake-era clients set the level with
``logging/setLevel`` (default: warning); 2026-07-28 clients opt in per request and the SDK filters.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from mcp import types
from mcp.server.mcpserver import Context

from server.mcp.confirm import MODERN

LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
_log = logging.getLogger(__name__)


class ClientLog:
    """Answers ``logging/setLevel`` and sends ``notifications/message`` at or above that level."""

    def __init__(self, lowlevel_server: Any) -> None:
        self.level: str = "warning"
        lowlevel_server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, self._set_level)

    async def _set_level(self, ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
        self.level = params.level
        return types.EmptyResult()

    async def send(self, context: Context | None, level: str, data: Any) -> None:
        if context is None:
            return
        try:
            session = context.request_context.session
        except (AttributeError, ValueError, LookupError):   # called outside a request (a direct call in code)
            return
        if (context.protocol_version or "") < MODERN and LEVELS.index(level) < LEVELS.index(self.level):
            return
        with warnings.catch_warnings():   # deprecated in 2026-07-28, still what hosts show today
            warnings.simplefilter("ignore")
            try:
                await session.send_log_message(level=level, data=data, logger="tracesieve",
                                               related_request_id=context.request_id)
            except Exception:   # noqa: BLE001 - a log line must never fail the call it describes
                _log.debug("could not send a log message to the client", exc_info=True)
