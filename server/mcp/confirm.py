"""Asking the person behind the client (MCP elicitation), on old and new sessions alike.

On handshake-era sessions the server sends ``elicitation/create`` mid-call; 2026-07-28 sessions
have no back channel, so the call returns an ``InputRequiredResult`` carrying the question and
the client calls again with the answer in ``input_responses``. Clients that cannot elicit are
never asked (``None``): the caller decides what happens without a person.
"""

from __future__ import annotations

from typing import Any

from mcp import types
from mcp.server.mcpserver import Context
from mcp.types import InputRequiredResult

MODERN = "2026-07-28"


def can_ask(ctx: Context) -> bool:
    caps = ctx.client_capabilities
    return caps is not None and caps.elicitation is not None


def client_name(ctx: Context) -> str | None:
    info = getattr(ctx.session.client_params, "client_info", None)
    return getattr(info, "name", None)


async def ask(ctx: Context, key: str, message: str,
              schema: dict[str, Any]) -> types.ElicitResult | InputRequiredResult | None:
    """The person's answer, an ``InputRequiredResult`` to return (new sessions), or None (cannot ask)."""
    if not can_ask(ctx):
        return None
    if (ctx.protocol_version or "") >= MODERN:
        answer = (ctx.input_responses or {}).get(key)
        if isinstance(answer, types.ElicitResult):
            return answer
        request = types.ElicitRequest(params=types.ElicitRequestFormParams(message=message, requested_schema=schema))
        return InputRequiredResult(input_requests={key: request})
    return await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
