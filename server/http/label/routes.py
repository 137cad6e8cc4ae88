"""The ``/label`` routes: sign-in, criteria, the queue, answers, reveals, progress, proposals.

Every page needs a reviewer (cookie or bearer token); every POST needs its CSRF token. Store work
is blocking, so it runs on a worker thread. A ``TracesieveError`` becomes a page that says what
was wrong and how to go on, with the HTTP status that matches it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from server.http.label import auth
from server.http.label.pages import LabelPages, item_href
from server.http.label.render import page
from tools import clock
from tools.errors import ConflictError, InvalidInputError, NotFoundError, TracesieveError
from tools.labels import review
from tools.labels.review import Reviewer

log = logging.getLogger("tracesieve.label")
Handler = Callable[[Request, Reviewer], Awaitable[Response]]
_STATUS = {InvalidInputError: 400, NotFoundError: 404, ConflictError: 409}


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


class LabelRoutes:
    """Handlers bound to one store and one ``PageAuth``."""

    def __init__(self, pages: LabelPages, page_auth: auth.PageAuth) -> None:
        self.pages = pages
        self.auth = page_auth

    # -- plumbing ----------------------------------------------------------------------------------
    def signed_in(self, handler: Handler, *, post: bool = False) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            reviewer = await run_in_threadpool(self.auth.reviewer, request)
            if reviewer is None:
                if post or request.headers.get("authorization"):
                    return page("error.html", 401, title="Not signed in", back="/label/login",
                                message="Your reviewer token is missing, wrong or revoked. Sign in again with the "
                                        "token your operator gave you (tracesieve reviewer add NAME prints one).")
                return _see("/label/login")
            form: dict[str, Any] = {}
            if post:
                form = dict(await request.form())
                if not self.auth.csrf_ok(request, form.get("csrf")):
                    return page("error.html", 403, title="Form expired", reviewer=reviewer, back="/label",
                                message="This form's CSRF token is missing or stale (the server restarted, or the "
                                        "form came from another site). Reload the page and answer again.")
            request.state.form = form
            try:
                return await handler(request, reviewer)
            except TracesieveError as error:
                status = next((s for kind, s in _STATUS.items() if isinstance(error, kind)), 400)
                criterion = form.get("criterion") or request.query_params.get("criterion")
                return page("error.html", status, title="Not done", reviewer=reviewer,
                            csrf=self.auth.csrf_for(request), message=str(error),
                            back=f"/label/next?criterion={_q(str(criterion))}" if criterion else None)
        return endpoint

    def _context(self, request: Request, reviewer: Reviewer) -> dict[str, Any]:
        return {"reviewer": reviewer, "csrf": self.auth.csrf_for(request)}

    # -- sign-in -----------------------------------------------------------------------------------
    async def login_form(self, request: Request) -> Response:
        value = auth.new_login_csrf()
        response = page("login.html", title="Sign in", login_csrf=value)
        response.set_cookie(auth.LOGIN_COOKIE, value, httponly=True, samesite="strict", path=auth.COOKIE_PATH)
        return response

    async def login(self, request: Request) -> Response:
        form = await request.form()
        if not auth.login_csrf_ok(request, form.get("csrf")):
            return page("error.html", 403, title="Form expired", back="/label/login",
                        message="The sign-in form expired. Open it again and paste your token.")
        token = str(form.get("token") or "").strip()
        reviewer = await run_in_threadpool(self.auth.reviewers.by_token, token)
        if reviewer is None:
            value = auth.new_login_csrf()
            response = page("login.html", 401, title="Sign in", login_csrf=value,
                            error="That token is not a current reviewer token. Check it, or ask your operator "
                                  "for a new one (tracesieve reviewer add NAME).")
            response.set_cookie(auth.LOGIN_COOKIE, value, httponly=True, samesite="strict", path=auth.COOKIE_PATH)
            return response
        response = _see("/label")
        response.set_cookie(auth.SESSION_COOKIE, token, httponly=True, samesite="strict", path=auth.COOKIE_PATH,
                            secure=request.url.scheme == "https")
        response.delete_cookie(auth.LOGIN_COOKIE, path=auth.COOKIE_PATH)
        return response

    async def logout(self, request: Request, reviewer: Reviewer) -> Response:
        response = _see("/label/login")
        response.delete_cookie(auth.SESSION_COOKIE, path=auth.COOKIE_PATH)
        return response

    # -- pages -------------------------------------------------------------------------------------
    async def index(self, request: Request, reviewer: Reviewer) -> Response:
        data = await run_in_threadpool(self.pages.index)
        return page("index.html", title="Criteria", **self._context(request, reviewer), **data)

    async def next_item(self, request: Request, reviewer: Reviewer) -> Response:
        criterion = request.query_params.get("criterion", "")
        after = request.query_params.get("after")
        trace_id = await run_in_threadpool(self.pages.next_trace, criterion, reviewer)
        if trace_id is not None:
            return _see(item_href(criterion, trace_id, **({"after": after} if after else {})))
        info = await run_in_threadpool(self.pages.criterion, criterion)
        feedback = await run_in_threadpool(self.pages.feedback, info, after, reviewer)
        skipped = await run_in_threadpool(self.pages.reviews.skipped, reviewer.name, criterion)
        return page("done.html", title="Queue done", criterion=info, feedback=feedback, skipped=skipped,
                    **self._context(request, reviewer))

    async def item(self, request: Request, reviewer: Reviewer, *, reveal: str | None = None) -> Response:
        params = request.state.form or request.query_params
        criterion, trace_id = str(params.get("criterion", "")), str(params.get("trace") or params.get("trace_id", ""))
        data = await run_in_threadpool(lambda: self.pages.item(criterion, trace_id, reviewer,
                                                               after=request.query_params.get("after"), reveal=reveal))
        return page("item.html", title=f"{criterion} · {trace_id}", **self._context(request, reviewer), **data)

    async def answer(self, request: Request, reviewer: Reviewer) -> Response:
        form = request.state.form
        criterion, trace_id = str(form.get("criterion", "")), str(form.get("trace_id", ""))
        # a pressed button names its value; Enter in a graded criterion's number field sends only ``grade``
        value, rationale = str(form.get("value") or form.get("grade") or ""), str(form.get("rationale") or "")

        def record() -> None:
            info = self.pages.criterion(criterion)
            if value == "skip":
                if not self.pages.reviews.known_trace_ids([trace_id]):
                    raise NotFoundError(f"No trace with id '{trace_id}'.")
                self.pages.reviews.skip(reviewer.name, trace_id, criterion, now_ms=clock.now_ms())
                return
            review.answer(self.pages.reviews, reviewer, trace_id=trace_id, criterion=criterion,
                          value=review.check_value(info, value), rationale=rationale, now_ms=clock.now_ms())

        await run_in_threadpool(record)
        self.pages.holds.release(criterion, trace_id)
        return _see("/label/next?criterion=" + _q(criterion) + ("" if value == "skip" else "&after=" + _q(trace_id)))

    async def reveal(self, request: Request, reviewer: Reviewer) -> Response:
        form = request.state.form
        if reviewer.role != "lead":
            return page("error.html", 403, title="Not allowed", back="/label", **self._context(request, reviewer),
                        message="Only a lead may show a field without redaction. Ask your operator "
                                "(tracesieve reviewer add NAME --role lead).")
        trace_id, field = str(form.get("trace_id", "")), str(form.get("field", ""))

        def log_it() -> None:
            self.pages.check_reveal(trace_id, field)
            self.pages.reviews.log_reveal(reviewer.name, trace_id, field, now_ms=clock.now_ms())

        await run_in_threadpool(log_it)
        log.warning("reviewer %s revealed %s of trace %s", reviewer.name, field, trace_id)
        return await self.item(request, reviewer, reveal=field)

    async def progress(self, request: Request, reviewer: Reviewer) -> Response:
        criterion = request.query_params.get("criterion", "")
        data = await run_in_threadpool(self.pages.progress, criterion)
        return page("progress.html", title=f"Progress · {criterion}", **self._context(request, reviewer), **data)

    async def propose_form(self, request: Request, reviewer: Reviewer) -> Response:
        return page("propose.html", title="Propose a failure mode", form={}, **self._context(request, reviewer))

    async def propose(self, request: Request, reviewer: Reviewer) -> Response:
        form = request.state.form

        def number(key: str) -> float | None:
            text = str(form.get(key) or "").strip()
            try:
                return float(text) if text else None
            except ValueError:
                raise InvalidInputError(f"'{text}' is not a number; give the scale as numbers, e.g. 1 and 5.") from None

        try:
            proposal = review.ProposedCriterion(
                name=str(form.get("name", "")).strip(), description=str(form.get("description", "")).strip(),
                kind="graded" if form.get("kind") == "graded" else "binary",
                scale_min=number("scale_min"), scale_max=number("scale_max"))
            await run_in_threadpool(lambda: review.propose(self.pages.reviews, reviewer, proposal, now_ms=clock.now_ms()))
        except (TracesieveError, ValueError) as error:
            message = str(error) if isinstance(error, TracesieveError) else (
                "Give a name of 2-63 characters and a description of at least 10 characters.")
            return page("propose.html", 400, title="Propose a failure mode", form=form, error=message,
                        **self._context(request, reviewer))
        return _see("/label/next?criterion=" + _q(proposal.name))


def _q(text: str) -> str:
    return quote(text, safe="")
