"""Rule judges: SQL (store) and Python evaluate to the same verdicts; on the demo traces each rule
flags exactly the seeded failures; on the hand-built set the known traces; bad specs explain themselves."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from server.demo.catalog import INTENTS
from server.demo.generate import generate_demo_traces, ground_truth
from server.storage.duckdb.store import DuckDBTraceStore
from server.storage.duckdb.judges_sql import DuckDBJudgeStore
from tests.factory import small_set
from tools.judges import specs as S
from tools.judges import registry, rules, runs
from tools.errors import InvalidInputError
from tools.judges.ports import Target

NOW = 1_763_000_000_000
ALL = Target(filter=None, now_ms=NOW)

PARITY_SPECS = [
    {"type": "regex", "field": "output", "pattern": r"order \d+", "must": "match"},
    {"type": "regex", "field": "output", "pattern": "sorry", "must": "not_match", "ignore_case": True},
    {"type": "regex", "field": "input", "pattern": "refund", "must": "not_match"},
    {"type": "length", "field": "output", "unit": "chars", "max": 1500},
    {"type": "length", "field": "input", "unit": "words", "min": 8, "max": 30},
    {"type": "token_budget", "max_total_tokens": 2500, "max_output_tokens": 200},
    {"type": "phrases", "field": "output", "required": ["Order", "kb-"], "banned": ["Sorry", "as an AI"]},
    {"type": "tool_call", "must_call": ["lookup_order"], "must_not_call": ["issue_refund"]},
    {"type": "tool_call", "expected_by_metadata": "intent",
     "expected_tools": {i.name: list(i.tools) for i in INTENTS}},
    {"type": "citation_grounding"},
    {"type": "citation_grounding", "retriever": "search_kb", "require_citation": True},
    {"type": "latency", "max_ms": 6000},
    {"type": "status", "trace_ok": True, "span_types": ["TOOL", "GUARDRAIL"]},
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DuckDBJudgeStore, list]:
    traces = generate_demo_traces(300, seed=3, now_ms=NOW)
    store = DuckDBTraceStore(tmp_path_factory.mktemp("demo") / "demo.duckdb")
    store.write_traces(traces + small_set())
    return DuckDBJudgeStore(store), traces


@pytest.fixture(scope="module")
def demo_items(demo) -> list:
    return _all_items(demo[0])


def _define(js: DuckDBJudgeStore, name: str, spec: dict, kind: str = "rule"):
    result = registry.define_judge(js, registry.DefineJudgeInput(name=name, kind=kind, criterion=name, spec=spec),
                                 now_ms=NOW)
    return registry.resolve(js, result.judge.ref)


def _all_items(js: DuckDBJudgeStore, target: Target = ALL) -> list:
    items, after = [], None
    while page := js.items(target, after=after, limit=500):
        items += page
        after = page[-1].item_id
    return items


def _store_verdicts(js: DuckDBJudgeStore, run_id: str, version: str) -> dict[str, tuple]:
    with js.traces.reading() as con:
        rows = con.execute("SELECT record_id, verdict, score, rationale FROM scores WHERE run_id = $r AND "
                           "judge_version = $v", {"r": run_id, "v": version}).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


@pytest.mark.parametrize("spec", PARITY_SPECS, ids=lambda s: s["type"] + "-" + str(len(str(s))))
def test_the_store_and_python_agree_on_every_item(demo, demo_items, spec: dict) -> None:
    js, _ = demo
    judge = _define(js, f"parity_{abs(hash(str(spec))) % 10**8}", spec)
    run_id = f"parity-{judge.version}"
    assert js.bulk_rule_scores(run_id, judge, ALL, NOW) == 312
    in_store = _store_verdicts(js, run_id, judge.version)
    parsed = S.parse_spec("rule", spec)
    mismatches = []
    for item in demo_items:
        v = rules.evaluate(parsed, item)
        label, score, reason = in_store[item.item_id]
        if (label, reason) != (v.label, v.reason) or (score is None) != (v.score is None) or \
                (score is not None and abs(score - v.score) > 1e-9):
            mismatches.append((item.item_id, (label, score, reason), (v.label, v.score, v.reason)))
    assert mismatches == []


def _flagged(js: DuckDBJudgeStore, spec: dict, name: str) -> tuple[set[str], set[str]]:
    judge = _define(js, name, spec)
    report = anyio.run(lambda: runs.run_judges(js, js, runs.RunJudgesInput(judges=[judge.ref], window="3650d"),
                                               model=None, no_model_hint="", now_ms=NOW))
    assert report.judges[0].evaluated_in == "store"
    with js.traces.reading() as con:
        rows = con.execute("SELECT trace_id, verdict FROM scores WHERE run_id = $r", {"r": report.run_id}).fetchall()
    return {t for t, v in rows if v == "fail"}, {t for t, v in rows if v == "unknown"}


def _truth(traces: list, criterion: str) -> set[str]:
    return {t.trace_id for t in traces if ground_truth(t).get(criterion) == "fail"}


def test_citation_grounding_flags_exactly_the_demo_traces_that_invent_a_citation(demo) -> None:
    js, traces = demo
    failed, unknown = _flagged(js, {"type": "citation_grounding"}, "demo_citations")
    demo_ids = {t.trace_id for t in traces}
    assert failed & demo_ids == _truth(traces, "citation_grounded")
    assert unknown & demo_ids == {t.trace_id for t in traces if t.response is None}   # crashed: nothing to check


def test_a_tool_span_error_rule_flags_exactly_the_demo_tool_errors(demo) -> None:
    js, traces = demo
    failed, _ = _flagged(js, {"type": "status", "trace_ok": False, "span_types": ["TOOL"]}, "demo_tool_errors")
    assert failed & {t.trace_id for t in traces} == _truth(traces, "tool_error")


def test_a_length_budget_flags_exactly_the_demo_rambling_answers(demo) -> None:
    js, traces = demo
    failed, _ = _flagged(js, {"type": "length", "field": "output", "max": 2000}, "demo_length")
    assert failed & {t.trace_id for t in traces} == _truth(traces, "answer_length")


def test_expected_tools_per_intent_catch_every_wrong_tool_and_only_guardrail_blocks_besides(demo) -> None:
    js, traces = demo
    spec = {"type": "tool_call", "expected_by_metadata": "intent",
            "expected_tools": {i.name: list(i.tools) for i in INTENTS}}
    failed, _ = _flagged(js, spec, "demo_tools")
    wrong = _truth(traces, "correct_tool")
    blocked = {t.trace_id for t in traces if any(s.span_type == "GUARDRAIL" and s.status == "ERROR" and
                                                 s.attributes.get("guardrail.action") == "block" for s in t.spans)}
    assert wrong <= failed
    assert failed & {t.trace_id for t in traces} - wrong <= blocked


def test_rules_on_the_hand_built_traces_flag_the_known_ones(store: DuckDBTraceStore) -> None:
    js = DuckDBJudgeStore(store)
    items = {i.item_id: i for i in _all_items(js)}
    check = {
        "tool errors": ({"type": "status", "trace_ok": False, "span_types": ["TOOL"]}, {"t03", "t09"}),
        "slow": ({"type": "latency", "max_ms": 3000}, {"t02", "t07"}),
        "long": ({"type": "length", "max": 10_000}, {"t12"}),
        "reset tool": ({"type": "tool_call", "must_not_call": ["reset_password"]}, {"t06"}),
        "errors": ({"type": "status"}, {"t02", "t05", "t09"}),
    }
    for name, (spec, expected) in check.items():
        parsed = S.parse_spec("rule", spec)
        assert {i for i, item in items.items() if rules.evaluate(parsed, item).label == "fail"} == expected, name
    assert items["t01"].output == "It ships tomorrow." and items["t01"].input == "Where is my order?"


def test_json_schema_rules_check_tool_arguments_in_python(demo, demo_items) -> None:
    js, traces = demo
    spec = {"type": "json_schema", "target": "tool_arguments", "tool": "lookup_order",
            "json_schema": {"type": "object", "required": ["order_id"],
                            "properties": {"order_id": {"type": "string", "pattern": "^[0-9]+$"}}}}
    judge = _define(js, "order_id_args", spec)
    assert js.bulk_rule_scores("schema-run", judge, ALL, NOW) is None   # not expressible in SQL
    parsed = S.parse_spec("rule", spec)
    verdicts = {i.trace_id: rules.evaluate(parsed, i) for i in demo_items}
    bad = [t for t in traces for s in t.spans if s.tool_name == "lookup_order" and s.inputs and
           not __import__("json").loads(s.inputs)["order_id"].isdigit()]
    assert bad and all(verdicts[t.trace_id].label == "fail" for t in bad)
    failing = next(verdicts[t.trace_id] for t in bad)
    assert "lookup_order arguments violates the schema at order_id" in failing.reason


def test_a_regex_re2_cannot_run_falls_back_to_python(demo) -> None:
    js, _ = demo
    judge = _define(js, "lookahead", {"type": "regex", "pattern": r"order(?= \d)", "must": "match"})
    assert js.bulk_rule_scores("lookahead-run", judge, ALL, NOW) is None
    report = anyio.run(lambda: runs.run_judges(js, js, runs.RunJudgesInput(judges=["lookahead"], window="3650d"),
                                               model=None, no_model_hint="", now_ms=NOW))
    assert report.judges[0].evaluated_in == "python" and report.judges[0].scored == report.items == 301


def test_an_invalid_spec_names_the_field_and_shows_an_example() -> None:
    with pytest.raises(InvalidInputError) as error:
        S.parse_spec("rule", {"type": "length", "unit": "lines", "max": 10})
    assert str(error.value) == (
        "Invalid length judge spec:\n"
        "spec.unit: Input should be 'chars' or 'words'\n"
        'Example of a valid length spec: {"type": "length", "field": "output", "unit": "chars", "max": 2000}')
    with pytest.raises(InvalidInputError, match="spec.type 'regexp' is not a rule judge type. Use one of: regex, "):
        S.parse_spec("rule", {"type": "regexp", "pattern": "x"})
    with pytest.raises(InvalidInputError, match="call train_classifier_judge"):
        S.parse_spec("classifier", {})


def test_a_changed_spec_is_a_new_version_and_the_old_one_stays_runnable(tmp_path: Path) -> None:
    js = DuckDBJudgeStore(DuckDBTraceStore(tmp_path / "s.duckdb"))

    def define(spec: dict) -> registry.DefineJudgeResult:
        return registry.define_judge(js, registry.DefineJudgeInput(name="slow", kind="rule", criterion="latency",
                                                               spec=spec), now_ms=NOW)

    first = define({"type": "latency", "max_ms": 5000})
    same = define({"max_ms": 5000, "type": "latency"})
    second = define({"type": "latency", "max_ms": 3000})
    assert (first.created, same.created, second.created) == (True, False, True)
    assert (first.judge.ref, second.judge.ref, second.previous) == ("slow@1", "slow@2", "slow@1")
    assert registry.resolve(js, "slow@1").spec["max_ms"] == 5000
    assert registry.resolve(js, f"slow@{first.judge.version[:6]}").seq == 1
    assert registry.resolve(js, "slow").seq == 2
    assert [v.ref for v in registry.get_judge(js, "slow").versions] == ["slow@2", "slow@1"]
    with pytest.raises(Exception, match=r"No judge named 'slwo'. Did you mean 'slow'\? Existing: slow."):
        registry.resolve(js, "slwo")


@pytest.fixture(scope="module")
def fixtures_store(tmp_path_factory: pytest.TempPathFactory) -> DuckDBJudgeStore:
    from server.ingestion.pipeline import ingest
    from server.ingestion import read_path
    from tests.conftest import FIXTURES

    store = DuckDBTraceStore(tmp_path_factory.mktemp("fixtures") / "fixtures.duckdb")
    for path in [*sorted((FIXTURES / "langfuse").glob("*.trace.json")), FIXTURES / "openinference-genai"]:
        ingest(store, read_path(path, "auto"))
    return DuckDBJudgeStore(store)


def test_on_the_shared_real_world_fixtures_the_store_and_python_agree_and_read_the_text(fixtures_store) -> None:
    js = fixtures_store
    items = {i.item_id: i for i in _all_items(js)}
    assert len(items) >= 20
    weather = next(i for i in items.values() if i.input == "What's the weather like in Berlin and New York?")
    assert weather.output.startswith("Great! Here's the current weather for both cities")
    assert [c.name for c in weather.tool_calls] == ["mcp__weather__get_weather"] * 2
    mismatches = []
    for n, spec in enumerate(PARITY_SPECS[:8] + [{"type": "tool_call", "must_call": ["get_weather"]}]):
        judge = _define(js, f"fixture_parity_{n}", spec)
        js.bulk_rule_scores("fixture-run", judge, ALL, NOW)
        in_store = _store_verdicts(js, "fixture-run", judge.version)
        parsed = S.parse_spec("rule", spec)
        for item in items.values():
            v = rules.evaluate(parsed, item)
            label, score, reason = in_store[item.item_id]
            if (label, reason) != (v.label, v.reason):
                mismatches.append((spec["type"], item.item_id, reason, v.reason))
    assert mismatches == []
    tokyo = next(i for i in items.values() if i.input == "What's the weather in Tokyo?")
    must = S.parse_spec("rule", {"type": "tool_call", "must_call": ["get_weather"]})
    assert rules.evaluate(must, tokyo).label == "pass"
    assert rules.evaluate(must, weather).reason == "get_weather not called"
