"""Streamable HTTP transport: loopback by default, bearer token required anywhere else."""

from __future__ import annotations

import hmac
import ipaddress
import logging

import uvicorn
from mcp.server import MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

from tools.errors import InvalidInputError

log = logging.getLogger("tracesieve.http")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BearerAuth:
    """ASGI middleware: every request must carry ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                body = b'{"error": "missing or wrong bearer token: send Authorization: Bearer <TRACESIEVE_TOKEN>"}'
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"),
                                        (b"www-authenticate", b'Bearer realm="tracesieve"')]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def http_app(mcp: MCPServer, *, host: str, token: str | None, otlp: ASGIApp | None = None) -> ASGIApp:
    """The ASGI app to serve, refusing a non-loopback bind without a token. With ``otlp`` (an
    ``OtlpReceiver``), ``POST /v1/traces`` is answered there, behind the same bearer-token rule."""
    if not is_loopback(host) and not token:
        raise InvalidInputError(
            f"Refusing to serve on {host} without authentication: anyone who can reach it could read "
            "your traces. Pass --token (or set TRACESIEVE_TOKEN), or bind to 127.0.0.1.")
    app: ASGIApp = mcp.streamable_http_app(host=host)
    if otlp is not None:
        from server.http.otlp_receiver import with_otlp_receiver

        app = with_otlp_receiver(app, otlp)  # type: ignore[arg-type]
    return BearerAuth(app, token) if token else app


def serve_http(mcp: MCPServer, *, host: str, port: int, token: str | None, otlp: ASGIApp | None = None) -> None:
    app = http_app(mcp, host=host, token=token, otlp=otlp)
    log.info("tracesieve MCP over streamable HTTP at http://%s:%d/mcp%s", host, port,
             " (bearer token required)" if token else "")
    uvicorn.run(app, host=host, port=port, log_level="warning")
