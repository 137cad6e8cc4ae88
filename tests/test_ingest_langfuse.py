"""Langfuse exports: the 20 real framework traces, plus a hand-written one for feedback and errors.

Expected numbers were read off the fixture files (usageDetails of GENERATION observations,
score values), not computed with the code under test.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from server.ingestion import read_path
from tests.conftest import FIXTURES  # the shared fixtures dir, wherever CI put it
from tools.errors import IngestError
from tools.models import Trace

LANGFUSE = FIXTURES / "langfuse"
DATA = Path(__file__).parent / "data" / "ingest"
FRAMEWORK_FILES = sorted(LANGFUSE.glob("*.trace.json"))


def load(name: str) -> Trace:
    (trace,) = list(read_path(LANGFUSE / f"{name}.trace.json"))
    assert isinstance(trace, Trace), str(trace)
    return trace


def types(trace: Trace) -> Counter:
    return Counter(span.span_type for span in trace.spans)


def test_there_are_twenty_framework_fixtures() -> None:
    assert len(FRAMEWORK_FILES) == 20


@pytest.mark.parametrize("path", FRAMEWORK_FILES, ids=lambda p: p.name.removesuffix(".trace.json"))
def test_every_framework_trace_loads_whole(path: Path) -> None:
    (trace,) = list(read_path(path, "langfuse"))
    assert isinstance(trace, Trace), str(trace)
    raw = json.loads(path.read_text())
    assert trace.trace_id == raw["trace"]["id"] and trace.source == "langfuse"
    assert len(trace.spans) == len(raw["observations"])
    assert trace.timestamp_ms > 1_700_000_000_000 and trace.execution_time_ms is not None
    assert sum(1 for span in trace.spans if span.span_type == "LLM") == \
        sum(1 for obs in raw["observations"] if obs["type"] == "GENERATION")


def test_a_directory_read_skips_chatml_views_and_the_license() -> None:
    results = list(read_path(LANGFUSE))
    assert [r for r in results if isinstance(r, IngestError)] == []
    assert len(results) == 20


def test_claude_agent_spans_tokens_tools_and_eval_scores() -> None:
    trace = load("claude-agent-2025-12-22")
    assert len(trace.spans) == 7
    # root SPAN says gen_ai.operation.name "chain" in its OTel attributes
    assert types(trace) == Counter({"LLM": 4, "TOOL": 2, "CHAIN": 1})
    assert (trace.input_tokens, trace.output_tokens) == (19 + 5 + 5 + 5, 29 + 53 + 56 + 94)
    assert trace.model == "claude-sonnet-4-5-20250929"
    assert trace.name == "claude.conversation" and trace.status == "OK"
    assert {span.tool_name for span in trace.spans if span.span_type == "TOOL"} == {"mcp__weather__get_weather"}
    assert json.loads(trace.request)["prompt"] == "What's the weather like in Berlin and New York?"
    assert trace.response and all(span.inputs and span.outputs for span in trace.spans)
    assert trace.labels == []
    scores = {score.judge: score for score in trace.scores}
    assert {judge: s.score for judge, s in scores.items()} == {
        "correctness": 0.0, "hallucination": 1.0, "toxicity": 0.0}
    assert {s.verdict for s in scores.values()} == {"unknown"}  # numbers never imply pass/fail
    assert {s.run_id for s in scores.values()} == {"imported:langfuse-eval"}
    assert scores["correctness"].rationale.startswith("The generation does not provide any factual information")


def test_beeai_counts_openinference_kinds_inside_generic_spans() -> None:
    trace = load("beeai-2025-08-01")
    assert len(trace.spans) == 29
    assert types(trace) == Counter({"AGENT": 18, "LLM": 5, "TOOL": 3, "CHAIN": 3})
    # only input usage is recorded; output stays unknown rather than a made-up 0
    assert (trace.input_tokens, trace.output_tokens) == (5542, None)
    assert sorted((s.judge, s.score) for s in trace.scores) == [("hallucination", 0.2), ("toxicity", 0.0)]


def test_csharp_agent_session_user_environment_and_orphan_root() -> None:
    trace = load("csharp-agent-with-gemini-2026-03-09")
    assert types(trace) == Counter({"LLM": 3, "UNKNOWN": 3, "TOOL": 2})
    assert (trace.input_tokens, trace.output_tokens) == (2546 + 3004 + 2497, 47 + 167 + 200)
    assert trace.session_id == "9714061f-20c0-4d98-9220-1dc7df15c3c2" and trace.user_id == "g.aprozeanu"
    assert trace.environment == "preprod"
    assert trace.metadata["resource"]["service.name"] == "agentic-clientinsights"
    assert trace.metadata["version"] == "105537"
    assert trace.request.startswith("What are my month over month performance insights")  # unwrapped once
    # the root's parent is not in the export: it is still the root, and gives the duration
    assert trace.execution_time_ms == 14851  # 12:25:54.654 -> 12:26:09.505
    assert {s.tool_name for s in trace.spans if s.span_type == "TOOL"} == {"final_result", "get_custom_report"}


def test_google_adk_and_koog_types_from_langfuse_and_genai() -> None:
    adk = load("google-adk-2025-08-28")
    assert types(adk) == Counter({"LLM": 2, "CHAIN": 1, "AGENT": 1, "TOOL": 1})
    assert (adk.session_id, adk.user_id) == ("demo-session", "demo-user")
    assert (adk.input_tokens, adk.output_tokens) == (67, 9)
    koog = load("koog-2025-08-26")
    assert types(koog) == Counter({"UNKNOWN": 7, "AGENT": 2, "LLM": 2})
    assert koog.metadata["version"] == "0.3.0"


def test_tags_become_true_flags_and_plain_json_observations_load() -> None:
    autogen = load("autogen-2025-06-06")
    assert autogen.tags == {"autogen": "true", "dev": "true"}
    assert (autogen.session_id, autogen.user_id) == ("session_abc", "user_123")
    assert (autogen.input_tokens, autogen.output_tokens) == (41, 3)
    jokes = load("pydantic-ai-tools-2025-12-04")  # observations only at top level, metadata as objects
    assert jokes.tags == {"example": "true", "joke-generator": "true"}
    assert types(jokes)["TOOL"] == 3 and (jokes.input_tokens, jokes.output_tokens) == (1315, 209)
    assert jokes.environment == "development"  # Langfuse's "default" loses to the app's own metadata
    assert json.loads(jokes.request) == {"args": ["programming"], "kwargs": {}}


def test_annotation_scores_are_labels_and_eval_api_scores_are_scores() -> None:
    (trace,) = list(read_path(DATA / "langfuse_feedback.trace.json"))
    assert isinstance(trace, Trace), str(trace)
    labels = {label.criterion: label for label in trace.labels}
    assert labels["helpfulness"].value == "fail" and labels["helpfulness"].numeric_value is None
    assert labels["helpfulness"].reviewer == "reviewer-ann"
    assert labels["helpfulness"].rationale == "did not check the order"
    assert labels["rating"].value == "4" and labels["rating"].numeric_value == 4.0
    assert labels["rating"].created_at_ms == 1746176700000 and labels["rating"].source == "langfuse"
    scores = {score.judge: score for score in trace.scores}
    assert (scores["policy_compliant"].verdict, scores["policy_compliant"].run_id) == ("pass", "imported:langfuse-eval")
    assert (scores["relevance"].score, scores["relevance"].run_id) == (0.75, "imported:langfuse-api")


def test_error_level_usage_v2_nested_observations_and_trace_fields() -> None:
    (trace,) = list(read_path(DATA / "langfuse_feedback.trace.json"))
    spans = {span.span_id: span for span in trace.spans}
    assert set(spans) == {"obs-root", "obs-gen", "obs-tool", "obs-event"}  # read from inside `trace`
    tool = spans["obs-tool"]
    assert (tool.status, tool.status_message, tool.tool_name) == ("ERROR", "order service returned 503", "lookup_order")
    assert trace.status == "OK"  # the root span did not fail
    assert (spans["obs-gen"].input_tokens, spans["obs-gen"].output_tokens) == (210, 18)
    event = spans["obs-event"]  # type EVENT is not a span type; no endTime -> zero length
    assert event.span_type == "UNKNOWN" and event.end_time_ns == event.start_time_ns
    assert trace.prompt_version == "support-answer@3"
    assert (trace.session_id, trace.user_id, trace.environment) == ("chat-991", "customer-17", "production")
    assert trace.tags == {"vip": "true", "refund": "true"}
    assert trace.metadata == {"channel": "web", "release": "v2.3.1", "version": "7"}
    assert json.loads(trace.request) == {"question": "Can I get a refund?"}
    assert trace.response == "Yes, within 30 days."
    assert trace.execution_time_ms == 2500 and trace.timestamp_ms == 1746093600000


def test_a_langfuse_trace_without_ids_is_an_error_naming_it(tmp_path: Path) -> None:
    doc = json.loads((DATA / "langfuse_feedback.trace.json").read_text())
    del doc["trace"]["observations"][1]["id"]
    path = tmp_path / "broken.trace.json"
    path.write_text(json.dumps([doc, {"trace": {"id": "t2", "timestamp": "2025-05-01T10:00:00Z"}, "observations": []}]))
    results = list(read_path(path))
    errors = [r for r in results if isinstance(r, IngestError)]
    assert [str(e) for e in errors] == [
        f"{path} (item 1, trace 4f1c2b3a4d5e6f708192a3b4c5d6e7f8): observation 'answer' has no id; "
        "every Langfuse observation needs one."]
    assert [r.trace_id for r in results if isinstance(r, Trace)] == ["t2"]
