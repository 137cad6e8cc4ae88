"""Who is on the page, and is this form theirs.

A reviewer signs in by pasting their token (``tracesieve reviewer add NAME`` prints it) or sends
it as ``Authorization: Bearer``. The signed-in token lives in an HttpOnly, SameSite=Strict cookie
scoped to ``/label``, so page scripts cannot read it and other sites cannot send it. Each lookup
goes to the store, so a revoked token stops working on the next request.

CSRF: every form carries ``csrf`` = HMAC(process secret, token hash). A POST without the right
value is refused even with a valid cookie. The sign-in form has no session yet, so it uses a
double-submit cookie instead (a random value in a cookie and in the form, compared).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from starlette.requests import Request

from tools.labels.review import Reviewer, token_sha256

SESSION_COOKIE = "tracesieve_reviewer"
LOGIN_COOKIE = "tracesieve_login_csrf"
COOKIE_PATH = "/label"


class PageAuth:
    """Reviewer lookup and CSRF tokens for one running server."""

    def __init__(self, reviewers: Any) -> None:
        """``reviewers``: the store's reviewer adapter (``FeatureStores.reviewers``: ``by_token``)."""
        self.reviewers = reviewers
        self._secret = secrets.token_bytes(32)

    @staticmethod
    def token_of(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip() or None
        return request.cookies.get(SESSION_COOKIE)

    def reviewer(self, request: Request) -> Reviewer | None:
        token = self.token_of(request)
        return self.reviewers.by_token(token) if token else None

    def csrf_for(self, request: Request) -> str:
        token = self.token_of(request) or ""
        return hmac.new(self._secret, token_sha256(token).encode(), hashlib.sha256).hexdigest()[:40]

    def csrf_ok(self, request: Request, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(self.csrf_for(request), str(given))


def login_csrf_ok(request: Request, given: str | None) -> bool:
    expected = request.cookies.get(LOGIN_COOKIE, "")
    return bool(expected) and bool(given) and hmac.compare_digest(expected, str(given))


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)
