"""Traces that arrive in pieces: every span stored exactly once, the trace row derived from all.

The trace is made by the real OpenTelemetry SDK and exported the way a ``BatchSpanProcessor``
exports it: in several requests, children before their parent, the root last; each request is one
line of a collector-style JSON-lines file (``MessageToJson`` of the real OTLP encoder's output).
The reference is the same spans ingested whole, into a store of their own.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from google.protobuf.json_format import MessageToJson
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from server.cli.main import cli
from server.ingestion import read_path
from server.ingestion.pipeline import IngestReport, ingest
from server.storage.duckdb.store import DuckDBTraceStore
from tests.factory import stored_rows, trace
from tools.clock import now_ms
from tools.traces.search import SearchTracesInput, search_traces
from tools.traces.view import GetTraceInput, get_trace

#: The trace row's columns that must match the whole-trace reference (not when it was written).
ROW = ("trace_id, timestamp_ms, execution_time_ms, status, name, request, response, session_id, model, "
       "environment, input_tokens, output_tokens, span_count, error_count, tool_names, tags")


@pytest.fixture(scope="module")
def sdk_spans() -> list[ReadableSpan]:
    """One 7-span agent trace, in the order the SDK ends (and a batch processor exports) them."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "agent",
                                                        "deployment.environment.name": "prod"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.pieces")
    with tracer.start_as_current_span("invoke_agent support", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.conversation.id": "conv-7",
            "input.value": '{"question": "Where is order 7?"}', "output.value": '{"answer": "Shipped."}'}):
        for turn in range(2):
            with tracer.start_as_current_span("chat gpt-4o", attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 100 + turn, "gen_ai.usage.output_tokens": 10}):
                pass
            with tracer.start_as_current_span("execute_tool lookup", attributes={
                    "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup_order"}):
                with tracer.start_as_current_span("http GET /orders"):
                    pass
    provider.shutdown()
    spans = list(exporter.get_finished_spans())
    assert len(spans) == 7 and spans[-1].parent is None  # the root ends last
    return spans


def export_lines(spans: list[ReadableSpan], cuts: list[int]) -> list[str]:
    """The spans as exported in batches ending at ``cuts``: one OTLP/JSON request per line."""
    bounds = [0, *cuts, len(spans)]
    return [MessageToJson(encode_spans(spans[a:b]), indent=None) for a, b in zip(bounds, bounds[1:])]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load(db: Path, *paths: Path) -> IngestReport:
    store = DuckDBTraceStore(db)
    report = IngestReport()
    for path in paths:
        ingest(store, read_path(path), report=report)
    store.release()
    return report


@pytest.fixture(scope="module")
def files(sdk_spans: list[ReadableSpan], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """3 batches (3 + 2 + 2 spans, the root in the last), written to two files, and the whole trace."""
    folder = tmp_path_factory.mktemp("pieces")
    first, second, third = export_lines(sdk_spans, [3, 5])
    whole = write(folder / "whole.jsonl", export_lines(sdk_spans, []))
    reference = folder / "reference.duckdb"
    load(reference, whole)
    return {"file1": write(folder / "file1.jsonl", [first, second]), "file2": write(folder / "file2.jsonl", [third]),
            "whole": whole, "line1": write(folder / "line1.jsonl", [first]), "reference": reference}


def row(db: Path) -> list[tuple]:
    return stored_rows(db, f"SELECT {ROW} FROM traces")


@pytest.mark.parametrize("order", [("file1", "file2"), ("file2", "file1")])
def test_a_trace_split_over_two_files_ingested_one_by_one_keeps_every_span(
        order: tuple[str, str], files: dict[str, Path], tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    reports = [load(db, files[name]) for name in order]
    assert stored_rows(db, "SELECT count(*), count(DISTINCT span_id) FROM spans") == [(7, 7)]
    assert row(db) == row(files["reference"])
    assert [r.spans_new for r in reports] == ([5, 2] if order[0] == "file1" else [2, 5])
    assert stored_rows(db, "SELECT status FROM traces") == [("OK",)]
    assert row(db)[0][4] == "invoke_agent support"


def test_both_files_in_one_call_store_seven_spans_and_report_what_was_stored(
        files: dict[str, Path], tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    result = CliRunner().invoke(cli, ["ingest", "--db", str(db), str(files["file1"]), str(files["file2"])])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert (report["traces"], report["spans_new"], report["spans_updated"], report["spans_unchanged"]) == (1, 7, 0, 0)
    assert row(db) == row(files["reference"])


def test_until_the_root_arrives_the_trace_is_in_progress_and_searchable_as_such(
        files: dict[str, Path], tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    load(db, files["file1"])
    store = DuckDBTraceStore(db)
    found = search_traces(store, SearchTracesInput(filter="attributes.status = 'IN_PROGRESS'"), now_ms=now_ms())
    assert [(t.status, t.name, t.span_count) for t in found.traces] == [("IN_PROGRESS", None, 5)]
    assert search_traces(store, SearchTracesInput(filter="attributes.status = 'OK'"), now_ms=now_ms()).traces == []


def test_a_retried_request_changes_nothing_and_is_counted_as_unchanged(files: dict[str, Path], tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    load(db, files["whole"])
    before = (row(db), stored_rows(db, "SELECT * EXCLUDE (trace_timestamp_ms) FROM spans ORDER BY span_id"))
    report = load(db, files["line1"])
    assert (report.spans_new, report.spans_updated, report.spans_unchanged) == (0, 0, 3)
    assert (row(db), stored_rows(db, "SELECT * EXCLUDE (trace_timestamp_ms) FROM spans ORDER BY span_id")) == before


def test_span_writes_never_touch_tags_labels_or_scores(files: dict[str, Path], tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    load(db, files["file1"])
    store = DuckDBTraceStore(db)
    (trace_id,) = store.known_trace_ids([stored_rows(db, "SELECT trace_id FROM traces")[0][0]])
    store.set_tag(trace_ids=[trace_id], expr=None, key="reviewed", value="yes", by="test", now_ms=1)
    store.release()
    load(db, files["file2"])
    assert stored_rows(db, "SELECT key, value FROM tags") == [("reviewed", "yes")]
    assert stored_rows(db, "SELECT status, tags FROM traces") == [("OK", '{"reviewed":"yes"}')]


def test_replace_overwrites_an_earlier_load_but_not_spans_of_the_same_load(files: dict[str, Path],
                                                                           tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    load(db, files["whole"])
    result = CliRunner().invoke(cli, ["ingest", "--db", str(db), "--replace", str(files["line1"])])
    assert result.exit_code == 0, result.output
    assert stored_rows(db, "SELECT count(*) FROM spans") == [(3,)]
    assert stored_rows(db, "SELECT status FROM traces") == [("IN_PROGRESS",)]
    result = CliRunner().invoke(cli, ["ingest", "--db", str(db), "--replace", str(files["file1"]),
                                      str(files["file2"])])
    assert result.exit_code == 0, result.output
    assert row(db) == row(files["reference"])


def test_a_span_sent_again_with_new_content_replaces_its_copy(tmp_path: Path) -> None:
    store = DuckDBTraceStore(tmp_path / "s.duckdb")
    store.write_traces([trace("t1", 0, answer="first")])
    outcome = store.write_traces([trace("t1", 0, answer="second")])
    assert (outcome.spans_new, outcome.spans_updated, outcome.spans_unchanged) == (0, 1, 2)
    assert "second" in store.load_trace("t1").spans[1].outputs


def _otlp_span(span_id: str, parent: str | None, start: int, end: int) -> dict:
    span = {"traceId": "ab" * 16, "spanId": span_id, "name": f"op {span_id[:2]}",
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(end)}
    if parent:
        span["parentSpanId"] = parent
    return span


def test_cycles_and_reversed_times_are_stored_with_a_warning_and_shown_by_get_trace(tmp_path: Path) -> None:
    t = 1_763_000_000_000_000_000
    a, b, c = "aa" * 8, "bb" * 8, "cc" * 8
    spans = [_otlp_span(a, b, t, t + 10), _otlp_span(b, a, t + 1, t + 5), _otlp_span(c, c, t + 2, t - 1_000_000)]
    path = tmp_path / "odd.json"
    path.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}))
    report = load(tmp_path / "s.duckdb", path)
    trace_id = "ab" * 16
    assert report.warnings == [
        f"trace '{trace_id}': spans '{a}' -> '{b}' -> '{a}' form a parent cycle; stored as sent and shown with the "
        f"cycle broken at span '{a}' (as a root span)",
        f"trace '{trace_id}': span '{c}' names itself as its parent; stored as sent and shown as a root span",
        f"trace '{trace_id}': span '{c}' ends 1 ms before it starts; stored as sent (its duration counts as 0)"]
    assert report.spans_new == 3 and report.warning_count == 3
    store = DuckDBTraceStore(tmp_path / "s.duckdb")
    shown = get_trace(store, GetTraceInput(trace_id=trace_id))
    assert [(s.span_id, s.depth) for s in shown.spans] == [(a, 0), (b, 1), (c, 0)]
    assert shown.problems == report.warnings
