"""What the HTTP transport checks before a request reaches MCP: who may connect, from which
Host/Origin, with which token, and how long a client may take to send its request.

An audit found ``--host 127.0.0.2`` serving without a token and without the SDK's Host/Origin
check (the SDK turns it on only for 127.0.0.1, localhost and ::1), a ``Host: evil.example``
request running ``query_sql`` (DNS rebinding), a lower-case ``bearer`` refused although RFC 6750
makes the scheme case-insensitive, duplicate ``Authorization`` headers resolved as "last one
wins", a whitespace-only token accepted, and half-sent request headers held open for ever.
"""

from __future__ import annotations

import hmac
import json
import os
import socket

import anyio
import h11
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from tools.errors import InvalidInputError

#: Hosts that may serve without a token: the loopback names a browser cannot be pointed at from
#: outside the machine. Other loopback addresses (127.0.0.2) are not on the list on purpose.
TOKENLESS_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_WILDCARD_BINDS = frozenset({"0.0.0.0", "::", ""})
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def header_timeout() -> float:
    """Seconds a client has to send a request's headers (``TRACESIEVE_HTTP_HEADER_TIMEOUT_S``, 10)."""
    return float(os.environ.get("TRACESIEVE_HTTP_HEADER_TIMEOUT_S", "10"))


def body_timeout() -> float:
    """Seconds a client has to send a request's body (``TRACESIEVE_HTTP_BODY_TIMEOUT_S``, 30)."""
    return float(os.environ.get("TRACESIEVE_HTTP_BODY_TIMEOUT_S", "30"))


def checked_token(host: str, token: str | None) -> str | None:
    """The token to require, or None on a tokenless loopback bind; refuses what must not serve."""
    if token is not None and not token.strip():
        raise InvalidInputError("The bearer token is blank. Set --token / TRACESIEVE_TOKEN to a long random "
                                "string (e.g. `openssl rand -hex 32`), or unset it on 127.0.0.1.")
    if token is not None and (token != token.strip() or any(c.isspace() for c in token)):
        raise InvalidInputError("The bearer token contains whitespace, which an Authorization header cannot "
                                "carry. Use a token without spaces (e.g. `openssl rand -hex 32`).")
    if host not in TOKENLESS_HOSTS and not token:
        raise InvalidInputError(
            f"Refusing to serve on {host} without authentication: anyone who can reach it could read "
            "your traces. Pass --token (or set TRACESIEVE_TOKEN), or bind to 127.0.0.1.")
    return token


def transport_security(host: str) -> TransportSecuritySettings:
    """The SDK's DNS-rebinding protection for ``host``: the Host header must name this server
    (the loopback names, the bind address, for a wildcard bind this machine's names, and any in
    ``TRACESIEVE_ALLOWED_HOSTS``, comma-separated), and a browser's Origin must match one of them."""
    names = list(_LOOPBACK_NAMES)
    if host in _WILDCARD_BINDS:
        names += [socket.gethostname(), socket.getfqdn()]
    else:
        names.append(f"[{host}]" if ":" in host else host)
    names += [n.strip() for n in os.environ.get("TRACESIEVE_ALLOWED_HOSTS", "").split(",") if n.strip()]
    names = list(dict.fromkeys(names))
    hosts = names + [f"{name}:*" for name in names]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                     allowed_origins=[f"{scheme}://{h}" for scheme in ("http", "https") for h in hosts])


async def _refuse(send: Send, status: int, message: str, challenge: str | None = None) -> None:
    headers = [(b"content-type", b"application/json")]
    if challenge:
        headers.append((b"www-authenticate", challenge.encode()))
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BearerAuth:
    """ASGI middleware: every request carries exactly one ``Authorization: Bearer <token>``.

    RFC 6750: the scheme is matched case-insensitively, a missing credential gets 401 with a bare
    challenge, a wrong one 401 with ``error="invalid_token"``, and a malformed request (two
    Authorization headers, no token after the scheme) 400 with ``error="invalid_request"``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = [value for name, value in scope.get("headers") or [] if name.lower() == b"authorization"]
        realm = 'Bearer realm="tracesieve"'
        if not given:
            await _refuse(send, 401, "missing bearer token: send Authorization: Bearer <TRACESIEVE_TOKEN>", realm)
            return
        scheme, _, credential = given[0].strip().partition(b" ")
        if len(given) > 1 or scheme.lower() != b"bearer" or not credential.strip():
            await _refuse(send, 400, "send exactly one Authorization header: Bearer <TRACESIEVE_TOKEN>",
                          realm + ', error="invalid_request"')
            return
        if not hmac.compare_digest(credential.strip(), self.expected):
            await _refuse(send, 401, "wrong bearer token: send Authorization: Bearer <TRACESIEVE_TOKEN>",
                          realm + ', error="invalid_token"')
            return
        await self.app(scope, receive, send)


class BodyDeadline:
    """ASGI middleware: a request body must arrive whole within ``timeout_s`` (else 408) and be at
    most ``max_bytes`` (else 413); the app then reads it from memory at once."""

    def __init__(self, app: ASGIApp, *, timeout_s: float, max_bytes: int) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        with anyio.move_on_after(self.timeout_s) as deadline:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                if size > self.max_bytes:
                    await _refuse(send, 413, f"request body over {self.max_bytes} bytes")
                    return
                if not message.get("more_body"):
                    break
        if deadline.cancelled_caught:
            await _refuse(send, 408, f"the request body did not arrive within {self.timeout_s:g}s")
            return
        body: list[Message] = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> Message:
            return body.pop() if body else await receive()

        await self.app(scope, replay, send)


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers are not complete within
    ``header_timeout()`` of it opening (or of the previous response). uvicorn has no such limit:
    its keep-alive timer restarts on every byte, so a client dripping headers held a slot for ever."""

    _header_deadline = None

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def,override]
        super().connection_made(transport)
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE:
            self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(header_timeout(), self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()
