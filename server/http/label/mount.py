"""Serve ``/label`` beside another ASGI app (the MCP endpoint) on the same host and port.

Requests under ``/label`` go to the labelling page, which authenticates reviewers with their own
tokens; everything else (``/mcp``, lifespan events) goes to the wrapped app unchanged, behind
whatever authentication it already has.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from server.storage.backend import Backend


def with_label_page(app: ASGIApp, store: Backend | Any) -> ASGIApp:
    from server.http.label.app import label_app

    page = label_app(store)

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == "/label" or path.startswith("/label/"):
            await page(scope, receive, send)
        else:
            await app(scope, receive, send)

    return dispatch
