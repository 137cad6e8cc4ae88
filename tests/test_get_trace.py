"""get_trace: the span tree within a character budget, with markers that lead to the rest."""

from __future__ import annotations

import json
import re

import pytest

from server.storage.duckdb.store import DuckDBTraceStore
from tests.factory import span, trace
from tools.errors import NotFoundError
from tools.traces.view import GetTraceInput, get_trace


def test_the_tree_is_depth_first_with_depths_and_offsets(store: DuckDBTraceStore) -> None:
    result = get_trace(store, GetTraceInput(trace_id="t03"))
    assert [(s.name, s.depth, s.type) for s in result.spans] == [
        ("support_agent", 0, "AGENT"), ("chat_model", 1, "CHAT_MODEL"), ("lookup_order", 1, "TOOL")]
    assert result.spans[2].status == "ERROR" and result.spans[2].start_offset_ms == 420.0
    assert result.truncated is False and result.span_total == 3


def test_a_root_span_repeating_the_trace_payloads_says_so_instead_of_repeating(store: DuckDBTraceStore) -> None:
    t = trace("dup", 0)
    t.spans[0].inputs, t.spans[0].outputs = t.request, t.response
    store.write_traces([t])
    root = get_trace(store, GetTraceInput(trace_id="dup")).spans[0]
    assert (root.inputs, root.outputs) == ("(same as the trace's request)", "(same as the trace's response)")


def test_a_large_field_is_cut_to_the_budget_with_a_marker_naming_the_next_call(store: DuckDBTraceStore) -> None:
    result = get_trace(store, GetTraceInput(trace_id="t12", max_chars=4000))
    assert result.truncated is True
    assert len(result.model_dump_json()) < 4000 + 1500  # JSON quoting overhead only
    marker = re.search(r"…\[truncated: (\d+) more chars; next: get_trace\(field='response', offset=(\d+)\)\]$",
                       result.trace.response)
    assert marker, result.trace.response[-200:]
    assert int(marker.group(1)) + int(marker.group(2)) == len(store.load_trace("t12").response)


def test_paging_a_field_returns_all_of_it_exactly(store: DuckDBTraceStore) -> None:
    full = store.load_trace("t12").response
    pieces, offset = [], 0
    while offset is not None:
        page = get_trace(store, GetTraceInput(trace_id="t12", field="response", offset=offset, max_chars=9000))
        pieces.append(page.content.content)
        offset = page.content.next_offset
    assert "".join(pieces) == full and len(pieces) == 6


def test_reading_one_span_field(store: DuckDBTraceStore) -> None:
    page = get_trace(store, GetTraceInput(trace_id="t03", span_id="t03-tool", field="inputs"))
    assert json.loads(page.content.content) == {"order_id": "A-1"}
    assert page.content.next_offset is None and [s.span_id for s in page.spans] == ["t03-tool"]


def test_many_spans_are_listed_in_pages(tmp_path) -> None:
    store = DuckDBTraceStore(tmp_path / "wide.duckdb")
    t = trace("wide", 0)
    t.spans += [span(f"s{i:03}", "wide-root", "TOOL", 1_763_000_000_000 + i, 1, name=f"tool_{i}", tool="x")
                for i in range(300)]
    store.write_traces([t])
    seen, offset = [], 0
    while offset is not None:
        page = get_trace(store, GetTraceInput(trace_id="wide", max_chars=8000, span_offset=offset))
        assert page.spans and len(page.model_dump_json()) < 8000 + 2000
        seen += [s.span_id for s in page.spans]
        offset = page.next_span_offset
    assert len(seen) == 303 and len(set(seen)) == 303


def test_an_unknown_trace_id_suggests_close_ids(store: DuckDBTraceStore) -> None:
    with pytest.raises(NotFoundError) as caught:
        get_trace(store, GetTraceInput(trace_id="t03x"))
    assert str(caught.value).startswith("No trace with id 't03x'. Did you mean 't03'")
    assert str(caught.value).endswith("Find ids with search_traces.")


def test_an_unknown_span_id_lists_the_real_ones(store: DuckDBTraceStore) -> None:
    with pytest.raises(NotFoundError, match="has no span 'nope'. Its spans: t03-root, t03-llm, t03-tool"):
        get_trace(store, GetTraceInput(trace_id="t03", span_id="nope", field="inputs"))


def test_a_trace_whose_header_alone_spends_the_budget_still_answers(tmp_path) -> None:
    """Found by bench/multi_server_bench: 200 tags on a trace and max_chars=2000 raised ValueError."""
    from server.storage.duckdb.store import DuckDBTraceStore
    from tests.factory import trace
    from tools.traces import view

    store = DuckDBTraceStore(tmp_path / "tags.duckdb")
    store.write_traces([trace("t01", 0, tags={f"k{i}": "v" * 20 for i in range(200)})])
    result = view.get_trace(store, view.GetTraceInput(trace_id="t01", max_chars=2000))
    assert result.trace.trace_id == "t01" and len(result.trace.tags) == 200
