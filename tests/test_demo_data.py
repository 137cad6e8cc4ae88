"""The demo generator: deterministic, valid traces whose seeded failures are really in the data.

Later demos label traces from ``metadata["demo_ground_truth"]`` and calibrate judges against it,
so these tests check each "fail" against the spans/response it claims, not just the counts.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter, defaultdict

import pytest

from server.demo import DEMO_CRITERIA, FAILURE_RATES, V13_FAILURE_RATES, generate_demo_traces, ground_truth
from server.demo import generate as gen
from server.demo.catalog import INTENT_BY_NAME, KB_DOCS
from server.demo.generate import ground_truth_labels
from tools.models import Label, Trace

NOW_MS = 1_760_000_000_000  # fixed so the tests are reproducible
DAY_MS = 86_400_000
N = 3000
CITE = re.compile(r"\[(kb-[a-z]+-\d{3})\]")


@pytest.fixture(scope="module")
def traces() -> list[Trace]:
    return generate_demo_traces(N, seed=7, now_ms=NOW_MS)


def _truth(t: Trace, criterion: str) -> str:
    return t.metadata["demo_ground_truth"][criterion]


def _answer(t: Trace) -> str | None:
    return None if t.response is None else json.loads(t.response)["choices"][0]["message"]["content"]


def _retrieved_ids(t: Trace) -> set[str]:
    return {d["id"] for s in t.spans if s.span_type == "RETRIEVER" for d in json.loads(s.outputs or "[]")}


def _tools(t: Trace) -> list:
    return sorted((s for s in t.spans if s.span_type == "TOOL"), key=lambda s: s.start_time_ns)


def _rate(ts: list[Trace], criterion: str) -> float:
    return sum(_truth(t, criterion) == "fail" for t in ts) / len(ts)


# ---- determinism and validity ------------------------------------------------------------

def test_same_seed_gives_identical_json_and_other_seed_differs(traces: list[Trace]) -> None:
    again = generate_demo_traces(N, seed=7, now_ms=NOW_MS)
    assert [t.model_dump_json() for t in again] == [t.model_dump_json() for t in traces]
    other = generate_demo_traces(N, seed=8, now_ms=NOW_MS)
    assert {t.trace_id for t in other}.isdisjoint({t.trace_id for t in traces})
    assert [t.request for t in other[:50]] != [t.request for t in traces[:50]]


def test_every_trace_validates_as_trace(traces: list[Trace]) -> None:
    assert len(traces) == N
    assert len({t.trace_id for t in traces}) == N
    for t in traces:
        again = Trace.model_validate_json(t.model_dump_json())
        assert again == t
        assert t.source == "demo" and t.name == "support_agent"
        assert t.trace_id.startswith("tr-")
    assert [t.timestamp_ms for t in traces] == sorted(t.timestamp_ms for t in traces)


def test_payloads_are_json_of_the_documented_shapes(traces: list[Trace]) -> None:
    for t in traces:
        req = json.loads(t.request or "")
        assert req["messages"][0]["role"] == "user" and req["messages"][0]["content"]
        if t.status == "OK":
            assert _answer(t)
        else:
            assert t.response is None
        for s in t.spans:
            for payload in (s.inputs, s.outputs):
                if payload is not None:
                    json.loads(payload)
        assert set(t.metadata) == {"app_version", "region", "channel", "intent", "demo_ground_truth"}
        assert t.tags == {"environment": t.environment}


def test_spans_are_well_nested(traces: list[Trace]) -> None:
    counts = Counter()
    for t in traces:
        by_id = {s.span_id: s for s in t.spans}
        assert len(by_id) == len(t.spans), "span ids unique within a trace"
        roots = [s for s in t.spans if s.parent_span_id is None]
        assert len(roots) == 1 and roots[0].span_type == "AGENT" and roots[0].name == "support_agent"
        root = roots[0]
        assert root.start_time_ns == t.timestamp_ms * 1_000_000
        assert t.execution_time_ms == (root.end_time_ns - root.start_time_ns) // 1_000_000
        assert (root.status == "ERROR") == (t.status == "ERROR")
        for s in t.spans:
            assert s.start_time_ns < s.end_time_ns
            if s.parent_span_id is not None:
                parent = by_id[s.parent_span_id]
                assert parent.start_time_ns <= s.start_time_ns and s.end_time_ns <= parent.end_time_ns
        children = sorted((s for s in t.spans if s is not root), key=lambda s: s.start_time_ns)
        for a, b in zip(children, children[1:]):
            assert a.end_time_ns <= b.start_time_ns, "steps run one after another"
        counts[len(t.spans)] += 1
        model_spans = [s for s in t.spans if s.span_type == "CHAT_MODEL"]
        assert t.input_tokens == sum(s.input_tokens or 0 for s in model_spans)
        assert t.output_tokens == sum(s.output_tokens or 0 for s in model_spans)
    assert min(counts) >= 3 and max(counts) <= 8
    assert sum(v for k, v in counts.items() if 4 <= k <= 7) / N > 0.95


# ---- seeded failure modes -----------------------------------------------------------------

@pytest.mark.parametrize("criterion", DEMO_CRITERIA)
def test_failure_modes_appear_at_their_intended_rate(traces: list[Trace], criterion: str) -> None:
    expected = sum((V13_FAILURE_RATES if t.prompt_version == "v13" else FAILURE_RATES)[criterion] for t in traces) / N
    sigma = math.sqrt(expected * (1 - expected) / N)
    assert 0.03 <= FAILURE_RATES[criterion] <= 0.08
    assert abs(_rate(traces, criterion) - expected) < max(0.012, 4 * sigma)
    assert all(set(t.metadata["demo_ground_truth"]) == set(DEMO_CRITERIA) for t in traces)
    assert {_truth(t, criterion) for t in traces} == {"pass", "fail"}


def test_v13_regresses_citation_grounding(traces: list[Trace]) -> None:
    v12 = [t for t in traces if t.prompt_version == "v12"]
    v13 = [t for t in traces if t.prompt_version == "v13"]
    assert len(v13) > 200
    assert _rate(v13, "citation_grounded") > _rate(v12, "citation_grounded") + 0.03


def test_agent_crashes_and_guardrail_trips(traces: list[Trace]) -> None:
    errors = [t for t in traces if t.status == "ERROR"]
    assert abs(len(errors) / N - gen.AGENT_CRASH_RATE) < 0.012
    for t in errors:
        root = next(s for s in t.spans if s.parent_span_id is None)
        assert root.status == "ERROR" and root.status_message and root.events
    guards = [s for t in traces for s in t.spans if s.span_type == "GUARDRAIL"]
    assert abs(len(guards) / N - gen.GUARDRAIL_SHARE) < 0.04
    tripped = [s for s in guards if s.status == "ERROR"]
    assert abs(len(tripped) / N - gen.GUARDRAIL_TRIP_RATE) < 0.012
    assert all(json.loads(s.outputs or "")["flagged"] for s in tripped)
    assert all(s.status_message.startswith("GuardrailTriggered") for s in tripped)


def test_invented_citations_cite_unretrieved_docs_and_grounded_answers_never_do(traces: list[Trace]) -> None:
    known = {d.id for d in KB_DOCS}
    invented = 0
    for t in traces:
        answer = _answer(t)
        cited = set(CITE.findall(answer or ""))
        retrieved = _retrieved_ids(t)
        if _truth(t, "citation_grounded") == "fail":
            invented += 1
            assert answer is not None and cited - retrieved, t.trace_id
        else:
            assert cited <= retrieved, t.trace_id
        assert retrieved <= known
    assert invented > 0


def test_tool_errors_are_followed_by_a_same_tool_retry(traces: list[Trace]) -> None:
    messages = []
    for t in traces:
        tools = _tools(t)
        errored = [i for i, s in enumerate(tools) if s.status == "ERROR"]
        if _truth(t, "tool_error") == "pass":
            assert not errored, t.trace_id
            continue
        first = tools[errored[0]]
        retry = tools[errored[0] + 1]
        assert retry.tool_name == first.tool_name and retry.start_time_ns >= first.end_time_ns
        assert json.loads(retry.inputs or "") != json.loads(first.inputs or ""), "retry adjusts its arguments"
        assert first.status_message and first.events[0]["name"] == "exception"
        messages.append(first.status_message)
    # Ids and numbers vary, but the messages collapse into a few groups once normalised.
    groups = {re.sub(r"'[^']*'|\b[0-9a-f]{8}\b|\d+", "<*>", m) for m in messages}
    assert len(set(messages)) > 50 and len(groups) <= 20


def test_wrong_tool_traces_call_a_tool_the_intent_does_not_need(traces: list[Trace]) -> None:
    for t in traces:
        expected = set(INTENT_BY_NAME[t.metadata["intent"]].tools)
        called = {s.tool_name for s in _tools(t)}
        if _truth(t, "correct_tool") == "fail":
            assert called and not called <= expected, t.trace_id
        else:
            assert called <= expected, t.trace_id
    refunds = [t for t in traces if t.metadata["intent"] == "refund_request" and _truth(t, "correct_tool") == "fail"]
    assert refunds and all({s.tool_name for s in _tools(t)} == {"track_shipment"} for t in refunds)


def test_over_long_answers_are_far_longer_with_high_output_tokens(traces: list[Trace]) -> None:
    long_ = [t for t in traces if _truth(t, "answer_length") == "fail"]
    normal = [t for t in traces if _truth(t, "answer_length") == "pass" and t.response]
    assert min(len(_answer(t) or "") for t in long_) > 2 * max(len(_answer(t) or "") for t in normal)
    assert min(t.output_tokens or 0 for t in long_) > 500 > max(t.output_tokens or 0 for t in normal)


def test_resubmissions_rephrase_the_previous_request_in_the_same_session(traces: list[Trace]) -> None:
    sessions: dict[str, list[Trace]] = defaultdict(list)
    for t in traces:
        sessions[t.session_id or ""].append(t)
    assert len(sessions) < N / 1.5, "several traces per session"
    resubmissions = 0
    for t in traces:
        if _truth(t, "resubmission") == "pass":
            continue
        resubmissions += 1
        earlier = [p for p in sessions[t.session_id or ""] if p.timestamp_ms < t.timestamp_ms]
        prev = max(earlier, key=lambda p: p.timestamp_ms)
        assert prev.timestamp_ms + (prev.execution_time_ms or 0) <= t.timestamp_ms <= prev.timestamp_ms + 120_000
        assert prev.user_id == t.user_id and prev.metadata["intent"] == t.metadata["intent"]
        assert prev.request != t.request
    assert resubmissions > 0


def test_ground_truth_helpers(traces: list[Trace]) -> None:
    t = next(t for t in traces if _truth(t, "tool_error") == "fail")
    assert ground_truth(t) == t.metadata["demo_ground_truth"]
    row = {"metadata": json.dumps(t.metadata)}
    assert ground_truth(row) == ground_truth(t)
    assert ground_truth(Trace(trace_id="x", timestamp_ms=1)) == {}
    labels = ground_truth_labels(t, created_at_ms=NOW_MS)
    assert [lb.criterion for lb in labels] == list(DEMO_CRITERIA)
    assert all(isinstance(lb, Label) and lb.trace_id == t.trace_id for lb in labels)
    assert {lb.criterion: lb.value for lb in labels}["tool_error"] == "fail"


# ---- realistic traffic ---------------------------------------------------------------------

def test_environment_split_and_models(traces: list[Trace]) -> None:
    env = Counter(t.environment for t in traces)
    assert set(env) == {"production", "staging"}
    assert abs(env["production"] / N - 0.8) < 0.04
    models = Counter(t.model for t in traces)
    assert set(models) == {"gpt-4o-mini", "claude-sonnet-4"} and models["gpt-4o-mini"] > 2 * models["claude-sonnet-4"]
    for t in traces:
        assert {s.model for s in t.spans if s.span_type == "CHAT_MODEL"} == {t.model}


def test_timestamps_fill_the_window_with_a_daily_rhythm(traces: list[Trace]) -> None:
    start = NOW_MS - 21 * DAY_MS
    for t in traces:
        assert start <= t.timestamp_ms and t.timestamp_ms + (t.execution_time_ms or 0) <= NOW_MS
    days = Counter((t.timestamp_ms - start) // DAY_MS for t in traces)
    assert len(days) == 21
    hours = Counter(t.timestamp_ms // 3_600_000 % 24 for t in traces)
    assert min(hours[h] for h in (16, 17, 18)) > 3 * max(hours[h] for h in (2, 3, 4))


def test_prompt_v13_only_in_the_last_days(traces: list[Trace]) -> None:
    prod = [t for t in traces if t.environment == "production"]
    cutoff = NOW_MS - 3 * DAY_MS
    assert all((t.prompt_version == "v13") == (t.timestamp_ms >= cutoff) for t in prod)
    assert {t.prompt_version for t in traces} == {"v12", "v13"}
    assert all(t.metadata["app_version"].startswith("2.15") == (t.prompt_version == "v13") for t in traces)


def test_durations_are_long_tailed(traces: list[Trace]) -> None:
    d = sorted(t.execution_time_ms or 0 for t in traces)
    p50, p95 = d[N // 2], d[int(0.95 * N)]
    assert 1800 <= p50 <= 3200, p50
    assert 7000 <= p95 <= 11000, p95
    assert d[-1] > 2 * p95


def test_requests_are_varied_and_some_carry_pii(traces: list[Trace]) -> None:
    requests = [json.loads(t.request or "")["messages"][0]["content"] for t in traces]
    assert len(set(requests)) >= 300
    emails = sum(bool(re.search(r"[\w.]+@[\w.]+\.\w+", q)) for q in requests)
    phones = sum(bool(re.search(r"\(\d{3}\) 555-\d{4}", q)) for q in requests)
    orders = sum(bool(re.search(r"\b\d{5,6}\b", q)) for q in requests)
    assert emails > 0.03 * N and phones > 0.005 * N and orders > 0.3 * N


def test_generation_is_fast_and_edge_cases() -> None:
    started = time.process_time()
    generate_demo_traces(N, seed=1, now_ms=NOW_MS)
    assert time.process_time() - started < 4.0   # ~0.6 s here; generous for loaded CI machines
    assert generate_demo_traces(0, now_ms=NOW_MS) == []
    small = generate_demo_traces(7, seed=3, now_ms=NOW_MS, days=1)
    assert len(small) == 7 and all(NOW_MS - DAY_MS <= t.timestamp_ms < NOW_MS for t in small)
    with pytest.raises(ValueError):
        generate_demo_traces(10, now_ms=NOW_MS, days=0)
