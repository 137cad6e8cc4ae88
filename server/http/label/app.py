"""The ``/label`` Starlette app: routes, static files, nothing shared with the MCP endpoint but the store."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from server.http.label.auth import PageAuth
from server.http.label.pages import LabelPages
from server.http.label.render import HERE
from server.http.label.routes import LabelRoutes
from server.storage.backend import Backend
from server.storage.factory import as_backend


def label_app(store: Backend | Any) -> Starlette:
    """The labelling page over ``store`` (a backend, or an open DuckDB store); reviewers sign in with
    their own tokens."""
    backend = as_backend(store)
    r = LabelRoutes(LabelPages(backend), PageAuth(backend.require_features("The labelling page", "reviewers").reviewers))
    return Starlette(routes=[
        Route("/label", r.signed_in(r.index)),
        Route("/label/login", r.login_form, methods=["GET"]),
        Route("/label/login", r.login, methods=["POST"]),
        Route("/label/logout", r.signed_in(r.logout, post=True), methods=["POST"]),
        Route("/label/next", r.signed_in(r.next_item)),
        Route("/label/item", r.signed_in(r.item)),
        Route("/label/answer", r.signed_in(r.answer, post=True), methods=["POST"]),
        Route("/label/reveal", r.signed_in(r.reveal, post=True), methods=["POST"]),
        Route("/label/progress", r.signed_in(r.progress)),
        Route("/label/new", r.signed_in(r.propose_form), methods=["GET"]),
        Route("/label/new", r.signed_in(r.propose, post=True), methods=["POST"]),
        Mount("/label/static", StaticFiles(directory=HERE / "static"), name="static"),
    ])
