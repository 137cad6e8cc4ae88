"""Streamable HTTP transport: loopback by default, bearer token required anywhere else.

The checks themselves (Host/Origin, token, header and body deadlines) live in ``guards``. The same
host and port can also answer ``POST /v1/traces`` (the OTLP receiver, behind the same bearer token)
and, with a store, serve the ``/label`` page, whose reviewers sign in with their own tokens.
"""

from __future__ import annotations

import logging
from typing import Any

import uvicorn
from mcp.server import MCPServer
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from starlette.types import ASGIApp

from server.http.guards import (BearerAuth, BodyDeadline, HeaderDeadlineProtocol, body_timeout, checked_token,
                                transport_security)
from server.http.label.mount import with_label_page
from server.http.otlp_receiver import OtlpReceiver, with_otlp_receiver
from server.storage.backend import Backend

log = logging.getLogger("tracesieve.http")


def http_app(mcp: MCPServer, *, host: str, token: str | None, store: Backend | Any = None,
             otlp: OtlpReceiver | None = None) -> ASGIApp:
    """The ASGI app to serve: refuses a bind other than 127.0.0.1/::1/localhost without a token,
    checks Host/Origin on every bind, and bounds how long a request body may take; with ``otlp``,
    ``POST /v1/traces`` is answered by the receiver; with ``store``, also the ``/label`` page."""
    token = checked_token(host, token)
    app: ASGIApp = mcp.streamable_http_app(host=host, transport_security=transport_security(host))
    if otlp is not None:
        app = with_otlp_receiver(app, otlp)
    app = BearerAuth(app, token) if token else app
    if store is not None:
        app = with_label_page(app, store)
    # OTLP batches may be larger than an MCP request; the receiver answers 413 past its own limit
    max_bytes = max(DEFAULT_MAX_REQUEST_BODY_SIZE, otlp.max_body_bytes if otlp is not None else 0)
    return BodyDeadline(app, timeout_s=body_timeout(), max_bytes=max_bytes)


def serve_http(mcp: MCPServer, *, host: str, port: int, token: str | None, store: Backend | Any = None,
               otlp: OtlpReceiver | None = None) -> None:
    app = http_app(mcp, host=host, token=token, store=store, otlp=otlp)
    log.info("tracesieve MCP over streamable HTTP at http://%s:%d/mcp%s%s", host, port,
             " and OTLP at /v1/traces" if otlp is not None else "",
             " (bearer token required)" if token else "")
    uvicorn.run(app, host=host, port=port, log_level="warning", http=HeaderDeadlineProtocol)
