"""annotation_queue: each anomaly signal fires on a trace built to show it, labelled traces are left out,
and the draw records selection probabilities that make Horvitz–Thompson estimates exact."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.storage.duckdb.store import DuckDBTraceStore
from server.storage.duckdb.queue_sql import DuckDBQueueStore
from tests.calibration_data import add_labels, add_scores
from tests.factory import span, trace
from tools.labels import annotation_queue as aq
from tools.models import Trace

NOW = 1_764_000_000_000


def _with(t: Trace, **changes) -> Trace:
    return t.model_copy(update=changes)


def _llm(t: Trace, **tokens) -> Trace:
    spans = [s.model_copy(update=tokens) if s.span_type == "CHAT_MODEL" else s for s in t.spans]
    return _with(t, spans=spans)


def anomalies() -> dict[str, Trace]:
    """One trace per signal (ids name the signal), at minutes 40+."""
    base = 40
    retry = trace("retry", base + 2)
    extra_tool = retry.spans[2].model_copy(update={"span_id": "retry-tool-2"})
    guard = trace("guard", base + 3)
    guard_span = span("guard-g", "guard-root", "GUARDRAIL", 0, 40, name="pii_guardrail", status="ERROR",
                      message="GuardrailTriggered: pii_guardrail flagged CREDIT_CARD")
    first = trace("resub1", base + 7, session="s-1", question="Where is my order 4417?")
    second = trace("resub2", base + 7, session="s-1", question="Let me rephrase. Has order 4417 shipped yet?")
    second = _with(second, timestamp_ms=first.timestamp_ms + 1500 + 10_000)
    return {
        "error_status": trace("err", base, status="ERROR"),
        "tool_error": trace("tool", base + 1, tool_status="ERROR"),
        "tool_retry": _with(retry, spans=retry.spans + [extra_tool]),
        "guardrail": _with(guard, spans=guard.spans + [guard_span]),
        "context_pressure": _llm(trace("ctx", base + 4), input_tokens=120_000),
        "token_spike": _llm(trace("spike", base + 5), output_tokens=900),
        "latency_outlier": trace("slow", base + 6, duration_ms=60_000),
        "resubmission": first, "_resub2": second,
        "judge_disagreement": trace("judges", base + 8),
        "judge_flagged": trace("flag", base + 9),
        "judge_uncertain": trace("unsure", base + 10),
    }


@pytest.fixture
def qstore(tmp_path: Path) -> DuckDBTraceStore:
    store = DuckDBTraceStore(tmp_path / "q.duckdb")
    normal = [trace(f"n{i:02d}", i, duration_ms=1400 + (i * 37) % 300) for i in range(30)]
    store.write_traces(normal + list(anomalies().values()))
    add_scores(store, "r1", "judge_a", {"judges": "pass"})
    add_scores(store, "r1", "judge_b", {"judges": "fail"})
    add_scores(store, "r1", "correct", {"flag": "fail", "unsure": "pass"}, scores={"flag": 0.1, "unsure": 0.52})
    return store


def run(store: DuckDBTraceStore, **kw) -> aq.AnnotationQueueResult:
    return aq.annotation_queue(DuckDBQueueStore(store), aq.AnnotationQueueInput(criterion="correct", **kw),
                               now_ms=NOW)


def test_each_signal_fires_on_the_trace_built_to_show_it(qstore: DuckDBTraceStore) -> None:
    found = DuckDBQueueStore(qstore).queue_signals("correct", None, NOW, aq.SignalConfig(), list(aq.SIGNALS))
    fired = {c.trace_id: {s.signal for s in c.signals} for c in found}
    for signal, t in anomalies().items():
        if not signal.startswith("_"):
            assert signal in fired.get(t.trace_id, set()), (signal, fired.get(t.trace_id))
    assert not any(tid.startswith("n") for tid in fired), "ordinary traces raise no signal"
    reasons = {c.trace_id: {aq.describe(s).signal: aq.describe(s).text for s in c.signals} for c in found}
    assert reasons["ctx"]["context_pressure"] == "chat_model used 120,000 of 128,000 input tokens (94%) on gpt-4o-mini"
    assert reasons["spike"]["token_spike"] == "chat_model: 900 output tokens vs usual 30 (30.0×)"
    assert reasons["resub1"]["resubmission"].startswith("user re-submitted a similar request 10 s later (asks again)")
    assert reasons["judges"]["judge_disagreement"] == "judges disagree: judge_a=pass, judge_b=fail"
    assert reasons["tool"]["tool_error"] == "tool lookup_order failed 1×: TimeoutError: timed out"
    assert reasons["guard"]["guardrail"].startswith("guardrail pii_guardrail tripped: GuardrailTriggered")


def test_queue_ranks_by_priority_with_reasons_and_leaves_labelled_traces_out(qstore: DuckDBTraceStore) -> None:
    add_labels(qstore, "correct", {"err": "fail"})
    add_labels(qstore, "other", {"tool": "pass"})  # a label for another criterion does not count
    q = run(qstore, limit=10, random_share=0.0)
    ids = [i.trace_id for i in q.items]
    assert "err" not in ids and "tool" in ids
    assert (q.population, q.already_labelled) == (41, 1)
    priorities = [i.priority for i in q.items]
    assert priorities == sorted(priorities, reverse=True) and priorities[-1] > 0
    assert all(i.reasons and i.selected_by == "anomaly" and i.selection_probability == 1.0 for i in q.items)
    assert q.unbiased is False  # pure anomaly queue: ordinary traces had no chance


def test_random_share_records_probabilities_that_sum_back_to_the_population(qstore: DuckDBTraceStore) -> None:
    q = run(qstore, limit=10, random_share=0.3, seed=11)
    top = [i for i in q.items if i.selected_by == "anomaly"]
    rand = [i for i in q.items if i.selected_by == "random"]
    assert (len(top), len(rand)) == (7, 3)
    assert all(i.selection_probability == pytest.approx(3 / (42 - 7)) for i in rand)
    assert sum(1 / i.selection_probability for i in q.items) == pytest.approx(q.population)  # Horvitz–Thompson
    assert q.unbiased is True
    with qstore.reading() as con:
        stored = con.execute("SELECT trace_id, selected_by, selection_probability, population FROM queue_items "
                             "WHERE queue_id = $q ORDER BY rank", {"q": q.queue_id}).fetchall()
    assert stored == [(i.trace_id, i.selected_by, pytest.approx(i.selection_probability), 42) for i in q.items]
    again = run(qstore, limit=10, random_share=0.3, seed=11)
    assert [i.trace_id for i in again.items] == [i.trace_id for i in q.items]  # same seed, same draw


def test_random_picks_fill_the_queue_when_anomalies_run_out(qstore: DuckDBTraceStore) -> None:
    q = run(qstore, limit=20, random_share=0.0, filter="attributes.execution_time_ms < 5000",
            signals=["error_status"])
    assert sum(i.selected_by == "anomaly" for i in q.items) == 1 and len(q.items) == 20
    assert q.filter_explained == "execution_time_ms is less than 5000"
    assert q.signal_counts == {"error_status": 1}
