"""The /label page over real HTTP semantics (Starlette's TestClient on the real app and a real store):
sign-in, CSRF, attribution, who may correct what, judges hidden until answered, reveals, proposals."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from server.http.label.app import label_app
from server.storage.duckdb.reviewers_sql import DuckDBReviewers
from server.storage.duckdb.store import DuckDBTraceStore
from tests.calibration_data import add_labels
from tests.label_page_data import CRITERION, JUDGE, add_reviewer, build, csrf, email, judge_verdict


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestClient, DuckDBTraceStore, dict[str, str]]:
    store = build(tmp_path_factory.mktemp("label") / "page.duckdb")
    tokens = {name: add_reviewer(store, name, role) for name, role in
              (("ana", "reviewer"), ("bob", "reviewer"), ("lea", "lead"), ("gone", "reviewer"))}
    DuckDBReviewers(store).revoke("gone", now_ms=2)
    return TestClient(label_app(store), follow_redirects=False), store, tokens


def as_(tokens: dict[str, str], name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[name]}"}


def rows(store: DuckDBTraceStore, sql: str, params: dict | None = None) -> list[tuple]:
    with store.reading() as con:
        return con.execute(sql, params or {}).fetchall()


def first_item_of(client: TestClient, tokens: dict[str, str], who: str, criterion: str) -> str:
    moved = client.get(f"/label/next?criterion={criterion}", headers=as_(tokens, who))
    assert moved.status_code == 303, moved.text
    return moved.headers["location"].split("trace=")[1].split("&")[0]


def first_item(client: TestClient, tokens: dict[str, str], who: str) -> tuple[str, str]:
    """Follow /label/next for ``who``: (trace id, the item page's HTML)."""
    moved = client.get(f"/label/next?criterion={CRITERION}", headers=as_(tokens, who))
    assert moved.status_code == 303, moved.text
    page = client.get(moved.headers["location"], headers=as_(tokens, who))
    return re.search(r'data-trace-id="([^"]+)"', page.text).group(1), page.text


def answer(client: TestClient, tokens: dict[str, str], who: str, trace_id: str, value: str, html: str,
           rationale: str = "") -> object:
    return client.post("/label/answer", headers=as_(tokens, who), data={
        "csrf": csrf(html), "criterion": CRITERION, "trace_id": trace_id, "value": value, "rationale": rationale})


def test_a_visitor_without_a_token_is_sent_to_sign_in_and_a_bad_or_revoked_token_is_refused(site) -> None:
    client, _, tokens = site
    assert client.get("/label").headers["location"] == "/label/login"
    form = client.get("/label/login")
    assert 'name="token"' in form.text
    login_csrf = csrf(form.text)
    wrong = client.post("/label/login", data={"csrf": login_csrf, "token": "tsr_not-a-token"})
    assert wrong.status_code == 401 and "not a current reviewer token" in wrong.text
    assert client.get("/label", headers=as_(tokens, "gone")).status_code == 401
    forged = TestClient(client.app).post("/label/login", data={"csrf": "x", "token": tokens["ana"]})
    assert forged.status_code == 403  # no login cookie: the sign-in form itself is CSRF-protected


def test_signing_in_sets_an_httponly_strict_cookie_and_every_page_sends_a_strict_policy(site) -> None:
    client, _, tokens = site
    browser = TestClient(client.app, follow_redirects=False)
    form = browser.get("/label/login")
    signed = browser.post("/label/login", data={"csrf": csrf(form.text), "token": tokens["ana"]})
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/label" in cookie
    index = browser.get("/label")
    assert index.status_code == 200 and CRITERION in index.text and "ana" in index.text
    assert "script-src 'self'" in index.headers["content-security-policy"]
    assert "http" not in re.sub(r'href="/label[^"]*"|src="/label[^"]*"', "", index.text).replace("https://", "http")


def test_an_answer_without_the_form_csrf_token_is_refused_and_nothing_is_stored(site) -> None:
    client, store, tokens = site
    before = rows(store, "SELECT count(*) FROM labels")
    refused = client.post("/label/answer", headers=as_(tokens, "ana"),
                          data={"criterion": CRITERION, "trace_id": "c01", "value": "fail"})
    assert refused.status_code == 403 and "CSRF" in refused.text
    assert rows(store, "SELECT count(*) FROM labels") == before


def test_the_page_redacts_pii_and_shows_the_judge_only_after_the_reviewer_answered(site) -> None:
    client, store, tokens = site
    trace_id, html = first_item(client, tokens, "ana")
    i = int(trace_id[1:])
    assert email(i) not in html and "&lt;EMAIL_1&gt;" in html and "&lt;PHONE_1&gt;" in html
    assert "Why it is in the queue" in html and f"{JUDGE}</strong> said" not in html
    done = answer(client, tokens, "ana", trace_id, "fail", html, rationale="cites nothing it retrieved")
    assert done.status_code == 303 and f"after={trace_id}" in done.headers["location"]
    after = client.get(done.headers["location"], headers=as_(tokens, "ana"), follow_redirects=True)
    assert f"{JUDGE}</strong> said" in after.text and "cites nothing it retrieved" in after.text
    assert email(i) not in after.text  # the judge's rationale quotes it: redacted too
    assert rows(store, "SELECT reviewer, value, source FROM current_labels WHERE trace_id = $t",
                {"t": trace_id}) == [("ana", "fail", "page")]
    again = client.get(f"/label/item?criterion={CRITERION}&trace={trace_id}", headers=as_(tokens, "ana"))
    assert "What the judges said" in again.text  # answered: the judges are shown beside her label


def test_another_reviewer_cannot_change_a_label_but_its_author_and_a_lead_can_correct_it(site) -> None:
    client, store, tokens = site
    trace_id, html = first_item(client, tokens, "ana")
    assert answer(client, tokens, "ana", trace_id, "pass", html).status_code == 303
    bob_page = client.get(f"/label/item?criterion={CRITERION}&trace={trace_id}", headers=as_(tokens, "bob")).text
    assert "Only ana or a lead can correct it" in bob_page and 'action="/label/answer"' not in bob_page
    refused = answer(client, tokens, "bob", trace_id, "fail", bob_page)
    assert refused.status_code == 409 and "only ana (or a lead) can correct" in refused.text
    assert f'href="/label/next?criterion={CRITERION}"' in refused.text  # and the way on with the queue
    assert answer(client, tokens, "ana", trace_id, "fail", html).status_code == 303
    lea_page = client.get(f"/label/item?criterion={CRITERION}&trace={trace_id}", headers=as_(tokens, "lea")).text
    assert answer(client, tokens, "lea", trace_id, "pass", lea_page).status_code == 303
    history = rows(store, "SELECT reviewer, value FROM labels WHERE trace_id = $t ORDER BY created_at_ms",
                   {"t": trace_id})
    assert history == [("ana", "pass"), ("ana", "fail"), ("lea", "pass")]  # corrections append, never overwrite


def test_skip_is_not_a_label_and_moves_only_that_reviewer_on(site) -> None:
    client, store, tokens = site
    trace_id, html = first_item(client, tokens, "bob")
    assert answer(client, tokens, "bob", trace_id, "skip", html).status_code == 303
    assert rows(store, "SELECT count(*) FROM labels WHERE trace_id = $t", {"t": trace_id}) == [(0,)]
    assert first_item(client, tokens, "bob")[0] != trace_id
    assert first_item(client, tokens, "lea")[0] == trace_id  # bob's skip released it to the others


def test_only_a_lead_may_reveal_a_redacted_field_and_every_reveal_is_logged(site) -> None:
    client, store, tokens = site
    trace_id, html = first_item(client, tokens, "lea")
    assert 'value="request"' in html  # a reveal button on the redacted request
    form = {"csrf": csrf(html), "criterion": CRITERION, "trace_id": trace_id, "field": "request"}
    ana_page = client.get(f"/label/item?criterion={CRITERION}&trace={trace_id}", headers=as_(tokens, "ana")).text
    assert 'action="/label/reveal"' not in ana_page
    denied = client.post("/label/reveal", headers=as_(tokens, "ana"), data={**form, "csrf": csrf(ana_page)})
    assert denied.status_code == 403
    shown = client.post("/label/reveal", headers=as_(tokens, "lea"), data=form)
    assert shown.status_code == 200 and email(int(trace_id[1:])) in shown.text
    assert "Shown in clear (logged): request" in shown.text
    assert rows(store, "SELECT reviewer, trace_id, field FROM reveal_log") == [("lea", trace_id, "request")]
    nothing = client.post("/label/reveal", headers=as_(tokens, "lea"), data={**form, "field": f"{trace_id}-tool.inputs"})
    assert nothing.status_code == 404 and "no field" in nothing.text


def test_a_proposed_failure_mode_becomes_a_criterion_with_its_own_queue(site) -> None:
    client, store, tokens = site
    page = client.get("/label/new", headers=as_(tokens, "ana")).text
    bad = client.post("/label/new", headers=as_(tokens, "ana"), data={
        "csrf": csrf(page), "name": "Wrong Refund", "description": "Quotes a refund amount the policy does not allow."})
    assert bad.status_code == 400 and "must be snake_case" in bad.text
    made = client.post("/label/new", headers=as_(tokens, "ana"), data={
        "csrf": csrf(page), "name": "refund_tone", "description": "Apologises without fixing anything; 1 = curt.",
        "kind": "graded", "scale_min": "1", "scale_max": "5"})
    assert made.status_code == 303 and made.headers["location"] == "/label/next?criterion=refund_tone"
    item = client.get(made.headers["location"], headers=as_(tokens, "ana"), follow_redirects=True).text
    assert all(f'data-key="{d}"' in item for d in "12345") and 'value="pass"' not in item
    trace_id = re.search(r'data-trace-id="([^"]+)"', item).group(1)
    out_of_scale = client.post("/label/answer", headers=as_(tokens, "ana"), data={
        "csrf": csrf(item), "criterion": "refund_tone", "trace_id": trace_id, "value": "7"})
    assert out_of_scale.status_code == 400 and "outside the scale" in out_of_scale.text
    assert rows(store, "SELECT name, kind, proposed_by FROM criteria") == [("refund_tone", "graded", "ana")]
    duplicate = client.post("/label/new", headers=as_(tokens, "bob"), data={
        "csrf": csrf(client.get("/label/new", headers=as_(tokens, "bob")).text), "name": "refund_tone",
        "description": "the same name again, for something else"})
    assert duplicate.status_code == 400 and "already exists" in duplicate.text


def test_progress_shows_the_seed_target_and_the_judges_agreement_with_the_labels(site) -> None:
    client, _, tokens = site
    trace_id, item = first_item(client, tokens, "lea")
    opposite = "pass" if judge_verdict(int(trace_id[1:])) == "fail" else "fail"
    assert answer(client, tokens, "lea", trace_id, opposite, item).status_code == 303
    html = client.get(f"/label/progress?criterion={CRITERION}", headers=as_(tokens, "ana")).text
    assert "seed&#39;s 10-20 per failure mode" in html
    assert f"Judge <code>{JUDGE}</code>" in html and "MCC" in html and "pairs" in html
    assert "By reviewer: " in html and "bob 5" in html
    assert f">{trace_id}</a>" in html  # a disagreement to look at, linked to its page
    assert "&lt;EMAIL_1&gt; cites nothing it retrieved" in html and "@example.com" not in html


def test_tokens_are_stored_only_as_hashes(site) -> None:
    _, store, tokens = site
    store.release()
    stored = b"".join(p.read_bytes() for p in store.path.parent.glob(store.path.name + "*"))
    assert b"tsr_" not in stored and len(rows(store, "SELECT token_sha256 FROM reviewers")) == len(tokens)


def test_behind_an_mcp_token_the_page_still_takes_reviewer_tokens_and_mcp_still_needs_its_own(site) -> None:
    from server.http.transport import http_app
    from server.mcp.app import build_app

    _, store, tokens = site
    served = TestClient(http_app(build_app(store), host="0.0.0.0", token="mcp-secret", store=store),
                        follow_redirects=False)
    assert served.get("/label").headers["location"] == "/label/login"
    assert served.get("/label", headers=as_(tokens, "ana")).status_code == 200
    assert served.post("/mcp", json={}).status_code == 401
    assert served.post("/mcp", json={}, headers=as_(tokens, "ana")).status_code == 401  # a reviewer token is not it


def test_a_graded_criterion_on_a_wide_scale_takes_a_typed_score(site) -> None:
    client, store, tokens = site
    form = client.get("/label/new", headers=as_(tokens, "lea")).text
    client.post("/label/new", headers=as_(tokens, "lea"), data={
        "csrf": csrf(form), "name": "answer_quality", "description": "How useful the reply is, 0 (useless) to 100.",
        "kind": "graded", "scale_min": "0", "scale_max": "100"})
    item = client.get("/label/next?criterion=answer_quality", headers=as_(tokens, "lea"), follow_redirects=True).text
    assert 'name="grade"' in item and 'data-key="g"' in item
    trace_id = re.search(r'data-trace-id="([^"]+)"', item).group(1)
    saved = client.post("/label/answer", headers=as_(tokens, "lea"), data={  # Enter in the field: no button value
        "csrf": csrf(item), "criterion": "answer_quality", "trace_id": trace_id, "grade": "72.5"})
    assert saved.status_code == 303
    assert rows(store, "SELECT value, numeric_value, reviewer FROM current_labels WHERE criterion = 'answer_quality'"
                ) == [("72.5", 72.5, "lea")]


def test_a_criterion_known_only_from_numeric_labels_is_answered_with_a_number(site) -> None:
    client, store, tokens = site
    add_labels(store, "helpfulness", {"c01": 4.0, "c02": 2.0}, reviewer="bob")
    item = client.get("/label/next?criterion=helpfulness", headers=as_(tokens, "ana"), follow_redirects=True).text
    assert 'value="pass"' not in item and all(f'data-key="{d}"' in item for d in "01234")


def test_two_reviewers_working_the_same_queue_get_different_traces() -> None:
    from tools.labels.review import HOLD_S, Holds

    now = [0.0]
    holds = Holds(clock=lambda: now[0])
    holds.hold("c", "t1", "ana")
    assert holds.held_by_others("c", "bob") == ["t1"] and holds.held_by_others("c", "ana") == []
    assert holds.held_by_others("other", "bob") == []
    now[0] = HOLD_S + 1
    assert holds.held_by_others("c", "bob") == []  # an abandoned trace comes back after the hold


def test_the_page_hands_a_held_trace_to_nobody_else(site) -> None:
    client, _, tokens = site
    form = client.get("/label/new", headers=as_(tokens, "ana")).text
    client.post("/label/new", headers=as_(tokens, "ana"), data={
        "csrf": csrf(form), "name": "policy_breach", "description": "Promises something the policy forbids."})
    ana, bob = (first_item_of(client, tokens, who, "policy_breach") for who in ("ana", "bob"))
    assert ana != bob
    assert first_item_of(client, tokens, "ana", "policy_breach") == ana
