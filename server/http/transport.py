"""Streamable HTTP transport: loopback by default, bearer token required anywhere else.

The checks themselves (Host/Origin, token, header and body deadlines) live in ``guards``. With a
store, the same server also serves the ``/label`` page, whose reviewers sign in with their own
tokens rather than the MCP bearer token.
"""

from __future__ import annotations

import logging

import uvicorn
from mcp.server import MCPServer
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from starlette.types import ASGIApp

from server.http.guards import (BearerAuth, BodyDeadline, HeaderDeadlineProtocol, body_timeout, checked_token,
                                transport_security)
from server.http.label.mount import with_label_page
from server.storage.duckdb.store import DuckDBTraceStore

log = logging.getLogger("tracesieve.http")


def http_app(mcp: MCPServer, *, host: str, token: str | None, store: DuckDBTraceStore | None = None) -> ASGIApp:
    """The ASGI app to serve: refuses a bind other than 127.0.0.1/::1/localhost without a token,
    checks Host/Origin on every bind, and bounds how long a request body may take; with ``store``,
    also the ``/label`` page."""
    token = checked_token(host, token)
    app: ASGIApp = mcp.streamable_http_app(host=host, transport_security=transport_security(host))
    app = BearerAuth(app, token) if token else app
    if store is not None:
        app = with_label_page(app, store)
    return BodyDeadline(app, timeout_s=body_timeout(), max_bytes=DEFAULT_MAX_REQUEST_BODY_SIZE)


def serve_http(mcp: MCPServer, *, host: str, port: int, token: str | None,
               store: DuckDBTraceStore | None = None) -> None:
    app = http_app(mcp, host=host, token=token, store=store)
    log.info("tracesieve MCP over streamable HTTP at http://%s:%d/mcp%s", host, port,
             " (bearer token required)" if token else "")
    uvicorn.run(app, host=host, port=port, log_level="warning", http=HeaderDeadlineProtocol)
