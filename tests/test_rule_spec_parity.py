"""Every rule spec, with its defaults and with each option, gives the same verdicts in SQL (the
store) and in Python (the reference), on demo traffic plus traces with no output or no status.
The audit's ``{'type': 'status'}`` (defaults only) failed every run with a BinderException, and a
``must: not_match`` regex passed every trace that had no output at all."""

from __future__ import annotations

import pytest

from server.demo.catalog import INTENTS
from server.demo.generate import generate_demo_traces
from server.storage.duckdb.judges_sql import DuckDBJudgeStore
from server.storage.duckdb.store import DuckDBTraceStore
from tests.factory import small_set, trace
from tests.test_rule_judges import ALL, NOW, _all_items, _define, _store_verdicts
from tools.judges import rules
from tools.judges import specs as S

#: Traces whose answer is missing in each way an exporter writes "nothing".
NO_OUTPUT = {"n-none": None, "n-empty": "", "n-blank": "  \n\t", "n-null": "null", "n-quoted": '""'}

SPECS = {
    # defaults: only the required fields
    "regex-defaults": {"type": "regex", "pattern": "order"},
    "length-defaults": {"type": "length", "max": 300},
    "token_budget-defaults": {"type": "token_budget", "max_total_tokens": 2000},
    "phrases-defaults": {"type": "phrases", "required": ["order"]},
    "tool_call-defaults": {"type": "tool_call", "must_call": ["lookup_order"]},
    "citation-defaults": {"type": "citation_grounding"},
    "latency-defaults": {"type": "latency", "max_ms": 3000},
    "status-defaults": {"type": "status"},
    # each option
    "regex-not_match": {"type": "regex", "pattern": "sorry", "must": "not_match"},
    "regex-ignore_case": {"type": "regex", "pattern": "ORDER", "ignore_case": True},
    "regex-input": {"type": "regex", "field": "input", "pattern": "refund", "must": "not_match"},
    "length-min-words": {"type": "length", "field": "input", "unit": "words", "min": 5},
    "length-min-max-chars": {"type": "length", "unit": "chars", "min": 20, "max": 400},
    "token_budget-input": {"type": "token_budget", "max_input_tokens": 1000},
    "token_budget-output": {"type": "token_budget", "max_output_tokens": 100},
    "phrases-banned-case": {"type": "phrases", "banned": ["Sorry"], "ignore_case": True},
    "phrases-input-both": {"type": "phrases", "field": "input", "required": ["my"], "banned": ["refund"]},
    "tool_call-must_not": {"type": "tool_call", "must_not_call": ["issue_refund"]},
    "tool_call-by-metadata": {"type": "tool_call", "expected_by_metadata": "intent",
                              "expected_tools": {i.name: list(i.tools) for i in INTENTS}},
    "citation-require-retriever": {"type": "citation_grounding", "retriever": "search_kb", "require_citation": True},
    "citation-pattern": {"type": "citation_grounding", "citation_pattern": r"\[(kb-[^\]]+)\]"},
    "status-span_types": {"type": "status", "span_types": ["TOOL"]},
    "status-spans-only": {"type": "status", "trace_ok": False, "span_types": ["TOOL", "GUARDRAIL"]},
}


@pytest.fixture(scope="module")
def judges(tmp_path_factory: pytest.TempPathFactory) -> DuckDBJudgeStore:
    store = DuckDBTraceStore(tmp_path_factory.mktemp("parity") / "store.duckdb")
    missing = [trace(tid, 20 + i).model_copy(update={"response": answer}) for i, (tid, answer) in
               enumerate(NO_OUTPUT.items())]
    store.write_traces(generate_demo_traces(80, seed=5, now_ms=NOW) + small_set() + missing)
    return DuckDBJudgeStore(store)


@pytest.mark.parametrize("name", SPECS)
def test_sql_and_python_agree_on_every_spec_with_defaults_and_options(judges: DuckDBJudgeStore, name: str) -> None:
    judge = _define(judges, name.replace("-", "_"), SPECS[name])
    items = _all_items(judges)
    assert judges.bulk_rule_scores(f"run-{name}", judge, ALL, NOW) == len(items) == 97
    stored = _store_verdicts(judges, f"run-{name}", judge.version)
    spec = S.parse_spec("rule", SPECS[name])
    python = {item.item_id: rules.evaluate(spec, item) for item in items}
    mismatches = [(i, stored[i], (v.label, v.score, v.reason)) for i, v in python.items()
                  if (stored[i][0], stored[i][2]) != (v.label, v.reason)
                  or (stored[i][1] is None) != (v.score is None)
                  or (v.score is not None and abs(stored[i][1] - v.score) > 1e-9)]
    assert mismatches == []
    labels = {v.label for v in python.values()}
    assert {"pass", "fail"} <= labels, f"{name} must both pass and fail something to test anything"


@pytest.mark.parametrize("name", ["regex-defaults", "regex-not_match", "length-defaults", "phrases-defaults",
                                  "phrases-banned-case", "citation-defaults"])
def test_a_rule_on_the_output_says_unknown_for_every_trace_without_one(judges: DuckDBJudgeStore, name: str) -> None:
    judge = _define(judges, name.replace("-", "_"), SPECS[name])
    judges.bulk_rule_scores(f"missing-{name}", judge, ALL, NOW)
    stored = _store_verdicts(judges, f"missing-{name}", judge.version)
    assert {tid: stored[tid][:2] for tid in NO_OUTPUT} == {tid: ("unknown", None) for tid in NO_OUTPUT}
    assert {stored[tid][2] for tid in NO_OUTPUT} == {"no output to check"}


def test_the_default_status_rule_flags_the_error_traces(judges: DuckDBJudgeStore) -> None:
    judge = _define(judges, "status_default_flags", {"type": "status"})
    judges.bulk_rule_scores("status-default", judge, ALL, NOW)
    stored = _store_verdicts(judges, "status-default", judge.version)
    assert {t for t in ("t02", "t05", "t09") if stored[t][0] == "fail"} == {"t02", "t05", "t09"}
    assert stored["t01"] == ("pass", 1.0, "no error status")
    assert stored["t02"] == ("fail", 0.0, "trace status ERROR")
