"""Labels, the annotation queue and the labelling page's store, the same on every engine and control plane.

Ported from the DuckDB-only tests (test_labels.py, test_annotation_queue.py, test_label_page.py): a
correction supersedes and the history stays, counts, a re-import adds nothing, each queue signal
fires exactly as DuckDB's does on the same traces, a seeded random draw repeats, reviewers and the
page's skips/queue/criteria; and two threads labelling at once lose nothing.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from mcp import Client
from starlette.testclient import TestClient

from server.cli.main import cli
from server.http.transport import http_app
from server.mcp.app import build_app
from server.storage.backend import Backend
from server.storage.duckdb.queue_sql import DuckDBQueueStore
from server.storage.duckdb.store import DuckDBTraceStore
from server.storage.factory import StoreUrl, build_backend
from tests.factory import trace
from tests.test_annotation_queue import anomalies
from tools.errors import ConflictError, InvalidInputError, NotFoundError
from tools.labels import annotation_queue as aq
from tools.labels import labelling, review
from tools.labels.review import ProposedCriterion
from tools.models import Score, Trace
from tools.traces.search import SearchTracesInput, search_traces

NOW = 1_764_000_000_000


def label(backend: Backend, trace_id: str, value: object, *, criterion: str = "correct", reviewer: str = "ana",
          now_ms: int = 1_000, rationale: str | None = None) -> labelling.LabelTraceResult:
    assert backend.features is not None and backend.features.labels is not None
    return labelling.label_trace(backend.features.labels, labelling.LabelTraceInput(
        trace_id=trace_id, criterion=criterion, value=value, reviewer=reviewer, rationale=rationale),
        source="test", now_ms=now_ms)


def history(backend: Backend, **kw: object) -> list[labelling.LabelRecord]:
    page = backend.features.labels.list_labels(  # type: ignore[union-attr]
        criterion=kw.get("criterion"), trace_ids=kw.get("trace_ids"), reviewer=kw.get("reviewer"),
        include_history=True, limit=500, after=None)
    return page.rows


def test_a_correction_supersedes_and_the_original_row_is_kept(feature_backend: Backend) -> None:
    first = label(feature_backend, "t01", "pass", rationale="looks right")
    before = history(feature_backend)
    second = label(feature_backend, "t01", "no", reviewer="bo", rationale="cites a doc it never retrieved")
    after = history(feature_backend)
    assert [r.model_dump(exclude={"current", "superseded_by"}) for r in after[1:]] == \
        [r.model_dump(exclude={"current", "superseded_by"}) for r in before]  # append-only: untouched
    assert second.superseded is not None and second.superseded.label_id == first.label.label_id
    assert second.label.value == "fail" and second.label.created_at_ms == 1_001  # stamped after the old one
    assert [(r.value, r.current, r.superseded_by) for r in after] == [
        ("fail", True, None), ("pass", False, second.label.label_id)]
    current = labelling.list_labels(feature_backend.features.labels,  # type: ignore[union-attr]
                                    labelling.ListLabelsInput(criterion="correct"))
    assert [(r.trace_id, r.value, r.reviewer) for r in current.labels] == [("t01", "fail", "bo")]
    assert current.criteria[0].model_dump() == {"criterion": "correct", "labelled_traces": 1, "passes": 0,
                                                "fails": 1, "graded": 0}


def test_the_filter_language_sees_the_current_label(feature_backend: Backend) -> None:
    label(feature_backend, "t02", "pass")
    label(feature_backend, "t02", "fail")  # the correction is what filters see
    label(feature_backend, "t03", "pass")
    label(feature_backend, "t04", 4, criterion="helpful")

    def ids(filter: str) -> list[str]:
        page = search_traces(feature_backend.traces, SearchTracesInput(filter=filter, limit=50), now_ms=0)
        return sorted(r.trace_id for r in page.traces)

    assert ids("labels.correct = 'fail'") == ["t02"]
    assert ids("labels.correct != 'fail'") == ["t03"]  # a comparison never matches a trace without a label
    assert ids("labels.correct IS NOT NULL") == ["t02", "t03"]
    assert len(ids("labels.correct IS NULL")) == 10
    assert ids("labels.helpful > 3") == ["t04"] and ids("labels.helpful < 3") == []
    assert ids("NOT labels.correct = 'fail'") == [t for t in ids("") if t != "t02"]


def test_unknown_trace_or_bad_value_writes_nothing(feature_backend: Backend) -> None:
    with pytest.raises(NotFoundError, match="No trace with id 't011'. Did you mean 't01'"):
        label(feature_backend, "t011", "pass")
    with pytest.raises(InvalidInputError, match="Label value 'meh'"):
        label(feature_backend, "t01", "meh")
    assert history(feature_backend) == []


def test_pages_counts_and_criteria(feature_backend: Backend) -> None:
    for i, tid in enumerate(["t01", "t02", "t03", "t04", "t05"]):
        label(feature_backend, tid, "pass" if i % 2 else "fail", now_ms=1_000 + i)
    label(feature_backend, "t06", 4, criterion="helpful", now_ms=2_000)
    label(feature_backend, "t07", 1, criterion="helpful", now_ms=2_001)
    store = feature_backend.features.labels  # type: ignore[union-attr]
    seen, token = [], None
    while True:
        page = labelling.list_labels(store, labelling.ListLabelsInput(criterion="correct", limit=2, page_token=token))
        seen += [r.trace_id for r in page.labels]
        assert page.total_matches == 5
        token = page.next_page_token
        if not token:
            break
    assert seen == ["t05", "t04", "t03", "t02", "t01"]
    assert [r.trace_id for r in history(feature_backend, reviewer="ana", trace_ids=["t02", "t06"])] == ["t06", "t02"]
    counts = {c.criterion: (c.labelled_traces, c.passes, c.fails, c.graded) for c in store.criterion_counts(None)}
    assert counts == {"correct": (5, 2, 3, 0), "helpful": (2, 1, 0, 1)}
    assert store.label_criteria() == ["correct", "helpful"]
    with pytest.raises(NotFoundError, match="No labels for criterion 'corect'. Did you mean 'correct'"):
        labelling.list_labels(store, labelling.ListLabelsInput(criterion="corect"))


def test_reimporting_the_same_rows_adds_nothing(feature_backend: Backend) -> None:
    rows = [labelling.RawLabel(trace_id=t, criterion="correct", value=v, reviewer="ana", created_at_ms=5_000 + i,
                               where=f"line {i}") for i, (t, v) in enumerate([("t01", "pass"), ("t02", "fail")])]
    store = feature_backend.features.labels  # type: ignore[union-attr]
    first = labelling.import_labels(store, rows, source="csv", default_reviewer=None, strict_values=True, now_ms=9)
    again = labelling.import_labels(store, rows, source="csv", default_reviewer=None, strict_values=True, now_ms=9)
    assert (first.imported, again.imported, again.already_present) == (2, 0, 2)
    assert sorted((r.trace_id, r.value, r.created_at_ms) for r in history(feature_backend)) == [
        ("t01", "pass", 5_000), ("t02", "fail", 5_001)]


def test_two_threads_labelling_at_once_lose_nothing(feature_backend: Backend) -> None:
    per_thread, errors = 8, []

    def work(who: str) -> None:
        try:
            for i in range(per_thread):
                label(feature_backend, "t03", "pass" if i % 2 else "fail", reviewer=who, now_ms=3_000)
                label(feature_backend, f"t{4 + i % 4:02d}", "pass", criterion=f"by_{who}", reviewer=who, now_ms=3_000)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(who,)) for who in ("ana", "bo")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    shared = history(feature_backend, trace_ids=["t03"])
    assert len(shared) == 2 * per_thread and len({r.label_id for r in shared}) == 2 * per_thread
    # each correction saw the one before it: the times are distinct, so "current" is well defined
    assert len({r.created_at_ms for r in shared}) == 2 * per_thread
    assert [r.current for r in shared] == [True] + [False] * (2 * per_thread - 1)
    for who in ("ana", "bo"):
        assert len(history(feature_backend, criterion=f"by_{who}")) == per_thread


# -- the annotation queue ------------------------------------------------------------------------
def queue_traces() -> list[Trace]:
    """test_annotation_queue's traces (one per signal among thirty ordinary ones), the judges' verdicts
    carried as scores so every engine stores them the same way."""
    verdicts = {"judges": [("judge_a", "pass", None), ("judge_b", "fail", None)], "flag": [("correct", "fail", 0.1)],
                "unsure": [("correct", "pass", 0.52)]}
    normal = [trace(f"n{i:02d}", i, duration_ms=1400 + (i * 37) % 300) for i in range(30)]
    return [t.model_copy(update={"scores": [
        Score(trace_id=t.trace_id, judge=j, verdict=v, score=s, run_id="r1", created_at_ms=NOW - 1_000)
        for j, v, s in verdicts.get(t.trace_id, [])]}) for t in [*normal, *anomalies().values()]]


@pytest.fixture(scope="module")
def duckdb_signals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[str, float, str]]]:
    """What DuckDB's queue says about ``queue_traces``: the reference every engine must match."""
    store = DuckDBTraceStore(tmp_path_factory.mktemp("ref") / "ref.duckdb")
    store.write_traces(queue_traces())
    return _signals(DuckDBQueueStore(store).queue_signals("correct", None, NOW, aq.SignalConfig(), list(aq.SIGNALS)))


def _signals(found: list[aq.Candidate]) -> dict[str, list[tuple[str, float, str]]]:
    return {c.trace_id: sorted((s.signal, round(s.value, 6), aq.describe(s).text) for s in c.signals) for c in found}


@pytest.fixture
def queue_backend(feature_store_url: StoreUrl) -> Backend:
    backend = build_backend(feature_store_url)
    backend.traces.write_traces(queue_traces())
    return backend


def run_queue(backend: Backend, **kw: object) -> aq.AnnotationQueueResult:
    return aq.annotation_queue(backend.features.queue, aq.AnnotationQueueInput(criterion="correct", **kw),  # type: ignore
                               now_ms=NOW)


def test_each_queue_signal_matches_duckdb_on_the_same_traces(queue_backend: Backend, duckdb_signals) -> None:
    found = _signals(queue_backend.features.queue.queue_signals(  # type: ignore[union-attr]
        "correct", None, NOW, aq.SignalConfig(), list(aq.SIGNALS)))
    assert found == duckdb_signals
    fired = {signal for rows in found.values() for signal, _, _ in rows}
    assert fired == set(aq.SIGNALS)  # every signal took part in the comparison
    assert found["ctx"][0][2] == "chat_model used 120,000 of 128,000 input tokens (94%) on gpt-4o-mini"


def test_the_queue_leaves_labelled_traces_out_and_a_seeded_draw_repeats(queue_backend: Backend) -> None:
    label(queue_backend, "err", "fail")
    label(queue_backend, "tool", "pass", criterion="other")  # another criterion does not count
    q = run_queue(queue_backend, limit=10, random_share=0.3, seed=11)
    ids = [i.trace_id for i in q.items]
    assert "err" not in ids and (q.population, q.already_labelled) == (41, 1)
    top = [i for i in q.items if i.selected_by == "anomaly"]
    rand = [i for i in q.items if i.selected_by == "random"]
    assert (len(top), len(rand)) == (7, 3)
    assert all(i.selection_probability == pytest.approx(3 / (41 - 7)) for i in rand)
    assert sum(1 / i.selection_probability for i in q.items) == pytest.approx(q.population)  # Horvitz–Thompson
    again = run_queue(queue_backend, limit=10, random_share=0.3, seed=11)
    assert [i.trace_id for i in again.items] == ids  # same seed, same draw
    other = run_queue(queue_backend, limit=10, random_share=0.3, seed=12)
    assert [i.trace_id for i in other.items if i.selected_by == "random"] != [i.trace_id for i in rand]
    page = queue_backend.features.review  # type: ignore[union-attr]
    entry = page.queue_entry(ids[0], "correct")  # the draw was recorded, with its reasons
    assert entry is not None and entry["selected_by"] == "anomaly" and entry["reasons"][0]["signal"]
    assert page.next_in_queue("correct", "ana", exclude=[]) == ids[0]  # the latest queue, by rank


def test_random_picks_fill_the_queue_when_anomalies_run_out(queue_backend: Backend) -> None:
    q = run_queue(queue_backend, limit=20, random_share=0.0, filter="attributes.execution_time_ms < 5000",
                  signals=["error_status"])
    assert sum(i.selected_by == "anomaly" for i in q.items) == 1 and len(q.items) == 20
    assert q.signal_counts == {"error_status": 1}


# -- reviewers and the labelling page's store ----------------------------------------------------
def test_reviewers_tokens_and_revocation(feature_backend: Backend) -> None:
    reviewers = feature_backend.features.reviewers  # type: ignore[union-attr]
    token = reviewers.add("ana@example.com", "lead", now_ms=1)
    assert token.startswith("tsr_") and reviewers.by_token(token).name == "ana@example.com"
    assert reviewers.by_token(token + "x") is None and reviewers.by_token("nope") is None
    with pytest.raises(ConflictError, match="already exists"):
        reviewers.add("ana@example.com", "reviewer", now_ms=2)
    with pytest.raises(InvalidInputError, match="Role 'boss'"):
        reviewers.add("bo", "boss", now_ms=2)
    reviewers.revoke("ana@example.com", now_ms=3)
    assert reviewers.by_token(token) is None
    with pytest.raises(NotFoundError, match="No active reviewer"):
        reviewers.revoke("ana@example.com", now_ms=4)
    fresh = reviewers.add("ana@example.com", "reviewer", now_ms=5)  # a new token after revoking the old one
    assert reviewers.by_token(fresh).role == "reviewer"
    assert [(r.name, r.role, r.revoked_at_ms) for r in reviewers.list()] == [
        ("ana@example.com", "lead", 3), ("ana@example.com", "reviewer", None)]


def test_two_servers_adding_the_same_reviewer_at_once_make_one(feature_backend: Backend,
                                                                reopen_features: Callable[[], Backend]) -> None:
    stores = [feature_backend.features.reviewers, reopen_features().features.reviewers]  # type: ignore[union-attr]
    barrier, outcomes = threading.Barrier(2), []

    def add(reviewers: object) -> None:
        barrier.wait()
        try:
            outcomes.append(reviewers.add("ana", "reviewer", now_ms=1))  # type: ignore[attr-defined]
        except ConflictError as error:
            outcomes.append(error)

    threads = [threading.Thread(target=add, args=(r,)) for r in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tokens = [o for o in outcomes if isinstance(o, str)]
    assert len(tokens) == 1 and sum(isinstance(o, ConflictError) for o in outcomes) == 1, outcomes
    assert [r.name for r in stores[0].list()] == ["ana"] and stores[1].by_token(tokens[0]).name == "ana"


def test_the_page_store_answers_skips_proposals_and_verdicts(queue_backend: Backend) -> None:
    page = queue_backend.features.review  # type: ignore[union-attr]
    lead = review.Reviewer(name="lea", role="lead", created_at_ms=1)
    ana = review.Reviewer(name="ana", role="reviewer", created_at_ms=1)
    review.propose(page, ana, ProposedCriterion(name="wrong_amount", description="refund amount is wrong",
                                                kind="graded", scale_min=1, scale_max=5), now_ms=5)
    with pytest.raises(ConflictError, match="already exists"):
        review.propose(page, ana, ProposedCriterion(name="wrong_amount", description="the same name again"), now_ms=6)
    review.answer(page, ana, trace_id="n01", criterion="correct", value="pass", rationale="fine", now_ms=10)
    with pytest.raises(ConflictError, match="only ana"):
        review.answer(page, review.Reviewer(name="bo", role="reviewer", created_at_ms=1), trace_id="n01",
                      criterion="correct", value="fail", rationale=None, now_ms=11)
    review.answer(page, lead, trace_id="n01", criterion="correct", value="fail", rationale="lead says", now_ms=12)
    assert page.current_label("n01", "correct").reviewer == "lea"
    assert page.labels_by_reviewer("correct") == {"lea": 1}
    info = {c.name: c for c in page.criteria()}
    assert (info["wrong_amount"].kind, info["wrong_amount"].scale_max, info["wrong_amount"].labelled) == ("graded", 5, 0)
    assert (info["correct"].labelled, info["correct"].fails, info["correct"].judges) == (1, 1, ["correct"])
    assert {"judge_a", "judge_b"} <= set(info)  # scored judges nobody defined are criteria too
    assert [v["verdict"] for v in page.judge_verdicts("flag", ["correct", "judge_a"])] == ["fail"]
    assert page.next_in_queue("correct", "ana", exclude=[]) is None  # no queue drawn yet
    run_queue(queue_backend, limit=5, random_share=0.0)
    first = page.next_in_queue("correct", "ana", exclude=[])
    page.skip("ana", first, "correct", now_ms=20)
    assert page.skipped("ana", "correct") == 1
    second = page.next_in_queue("correct", "ana", exclude=[])
    assert second not in (None, first)
    assert page.next_in_queue("correct", "bo", exclude=[]) == first  # a skip moves only that reviewer on
    assert page.next_in_queue("correct", "bo", exclude=[first]) == second  # a trace held by another is passed
    page.log_reveal("lea", first, "request", now_ms=21)


def test_a_second_server_sees_the_labels_and_reviewers(feature_backend: Backend,
                                                      reopen_features: Callable[[], Backend]) -> None:
    token = feature_backend.features.reviewers.add("ana", "reviewer", now_ms=1)  # type: ignore[union-attr]
    label(feature_backend, "t01", "fail")
    other = reopen_features()
    assert other.features.reviewers.by_token(token).name == "ana"  # type: ignore[union-attr]
    assert label(other, "t01", "pass", reviewer="bo").superseded.value == "fail"


# -- the surfaces over chdb: MCP tools, the reviewer and label commands, the /label page ------------
@pytest.fixture
def chdb_backend(chdb_folder: Path) -> Backend:
    backend = build_backend(StoreUrl("chdb", path=chdb_folder, database=f"t_{uuid.uuid4().hex[:12]}"))
    backend.traces.write_traces(queue_traces())
    return backend


@pytest.mark.anyio
async def test_the_labelling_mcp_tools_work_over_chdb(chdb_backend: Backend) -> None:
    async with Client(build_app(chdb_backend)) as client:
        queued = await client.call_tool("annotation_queue", {"criterion": "correct", "limit": 5, "random_share": 0})
        first = queued.structured_content["items"][0]["trace_id"]
        labelled = await client.call_tool("label_trace", {"trace_id": first, "criterion": "correct", "value": "fail",
                                                          "reviewer": "ana", "rationale": "the tool failed"})
        corrected = await client.call_tool("label_trace", {"trace_id": first, "criterion": "correct",
                                                           "value": "pass", "reviewer": "bo"})
        listed = await client.call_tool("list_labels", {"criterion": "correct", "include_history": True})
        again = await client.call_tool("annotation_queue", {"criterion": "correct", "limit": 5, "random_share": 0})
    assert queued.structured_content["population"] == 42
    assert queued.structured_content["items"][0]["reasons"]  # an anomaly first
    assert labelled.structured_content["label"]["value"] == "fail"
    assert corrected.structured_content["superseded"]["label_id"] == labelled.structured_content["label"]["label_id"]
    assert [(r["value"], r["current"]) for r in listed.structured_content["labels"]] == [("pass", True), ("fail", False)]
    assert first not in [i["trace_id"] for i in again.structured_content["items"]]
    assert again.structured_content["already_labelled"] == 1


def test_the_reviewer_and_label_commands_work_over_chdb(chdb_backend: Backend, chdb_folder: Path) -> None:
    store = ["--store", f"chdb://{chdb_folder}?database={chdb_backend.traces.url.database}"]  # type: ignore[attr-defined]
    runner = CliRunner()
    added = runner.invoke(cli, ["reviewer", "add", "ana@example.com", "--role", "lead", *store])
    assert added.exit_code == 0, added.output
    token = added.stdout.strip().splitlines()[0]
    assert chdb_backend.features.reviewers.by_token(token).role == "lead"  # type: ignore[union-attr]
    assert "ana@example.com\tlead\tactive" in runner.invoke(cli, ["reviewer", "list", *store]).output
    assert runner.invoke(cli, ["label", "n03", "correct", "fail", "--reviewer", "ana", *store]).exit_code == 0
    listed = json.loads(runner.invoke(cli, ["labels", "list", *store]).output)
    assert [(r["trace_id"], r["value"]) for r in listed["labels"]] == [("n03", "fail")]
    queued = json.loads(runner.invoke(cli, ["queue", "correct", "--limit", "3", "--random-share", "0", *store]).output)
    assert len(queued["items"]) == 3 and all(i["reasons"] for i in queued["items"])
    assert "n03" not in [i["trace_id"] for i in queued["items"]] and queued["already_labelled"] == 1
    assert runner.invoke(cli, ["reviewer", "revoke", "ana@example.com", *store]).exit_code == 0
    assert chdb_backend.features.reviewers.by_token(token) is None  # type: ignore[union-attr]


def test_the_label_page_works_over_chdb(chdb_backend: Backend) -> None:
    token = chdb_backend.features.reviewers.add("ana", "reviewer", now_ms=1)  # type: ignore[union-attr]
    # as 'tracesieve serve --http' mounts it: beside the MCP endpoint, on the same store
    client = TestClient(http_app(build_app(chdb_backend), host="127.0.0.1", token=None, store=chdb_backend),
                        follow_redirects=False)
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/label", headers={"Authorization": "Bearer tsr_wrong"}).status_code in (303, 401)
    moved = client.get("/label/next?criterion=correct", headers=auth)
    assert moved.status_code == 303, moved.text
    page = client.get(moved.headers["location"], headers=auth)
    trace_id = re.search(r'data-trace-id="([^"]+)"', page.text).group(1)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    answered = client.post("/label/answer", headers=auth, data={
        "csrf": csrf, "criterion": "correct", "trace_id": trace_id, "value": "fail", "rationale": "wrong"})
    assert answered.status_code == 303, answered.text
    current = chdb_backend.features.review.current_label(trace_id, "correct")  # type: ignore[union-attr]
    assert (current.reviewer, current.value, current.source) == ("ana", "fail", "page")
    progress = client.get("/label/progress?criterion=correct", headers=auth)
    assert progress.status_code == 200 and "correct" in progress.text
