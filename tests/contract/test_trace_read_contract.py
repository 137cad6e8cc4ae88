"""get_trace's piecewise reads on every engine: the same answers as reading the trace whole.

Each engine answers ``trace_outline``/``span_texts``/``field_text`` with its own queries (DuckDB's
``trace_read``, ClickHouse's ``clickhouse/trace_read``). The reference is ``WholeTraceReading``:
the same three reads computed in Python from the engine's own ``load_trace``, which the contract
suite already holds equal to what was written. Text with characters outside ASCII checks that
prefixes, lengths and offsets count characters on both engines.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from mcp import Client

from server.mcp.app import build_app
from server.storage.backend import Backend
from server.storage.whole_trace import WholeTraceReading
from tests.factory import span, trace
from tools.errors import NotFoundError
from tools.models import Trace
from tools.traces.view import GetTraceInput, get_trace


class _Whole(WholeTraceReading):
    """The reference: every piece cut from the whole trace."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def load_trace(self, trace_id: str) -> Trace | None:
        return self.store.load_trace(trace_id)


def _odd_trace() -> Trace:
    """Unicode text, a root repeating the trace's payloads, attributes and events, a span without text."""
    t = trace("odd", 30, question="Où est ma commande ? 🚚 " * 40, answer="Elle part demain — 明日発送 " * 300)
    root, llm, tool = t.spans
    root.inputs, root.outputs = t.request, t.response
    llm.inputs, llm.outputs = "Résumé: " + (llm.inputs or ""), "« " + (llm.outputs or "")
    llm.attributes = {"gen_ai.system": "openai", "note": "déjà vu ✓", "n": 3}
    llm.events = [{"name": "retry", "attributes": {"attempt": 2}}]
    tool.inputs = tool.outputs = None
    t.metadata = {"region": "eu", "city": "Zürich"}
    return t


def _flags_as_bools(texts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """DuckDB says NULL (SQL's answer for a missing text) where the reference says False; both mean "no"."""
    return {k: {**v, **{f: bool(v[f]) for f in ("inputs_is_request", "outputs_is_response")}}
            for k, v in texts.items()}


@pytest.fixture(scope="module")
def stored(shared_backend: Backend) -> Backend:
    """``small_set`` plus the odd trace, one store per engine for the module: every test using it only reads."""
    shared_backend.traces.write_traces([_odd_trace()])
    return shared_backend


@pytest.mark.parametrize("trace_id", ["t01", "t12", "odd"])
@pytest.mark.parametrize("head", [5, 1000, 40_000])
def test_outline_and_span_texts_match_the_whole_trace(stored: Backend, trace_id: str, head: int) -> None:
    store, whole = stored.traces, _Whole(stored.traces)
    got, expected = store.trace_outline(trace_id, head), whole.trace_outline(trace_id, head)
    assert got is not None and expected is not None
    assert len(got[1]) == 3
    assert {**got[0]} == {**expected[0]}
    assert got[1] == expected[1]
    ids = [s["span_id"] for s in got[1]]
    for attributes in (False, True):
        assert _flags_as_bools(store.span_texts(trace_id, ids, head, attributes)) == \
            whole.span_texts(trace_id, ids, head, attributes)
    assert store.span_texts(trace_id, ids[1:], head, False).keys() == set(ids[1:])


def test_a_root_repeating_the_payloads_is_flagged_and_others_are_not(stored: Backend) -> None:
    texts = stored.traces.span_texts("odd", ["odd-root", "odd-llm", "odd-tool"], 100, False)
    assert (texts["odd-root"]["inputs_is_request"], texts["odd-root"]["outputs_is_response"]) == (True, True)
    assert (texts["odd-llm"]["inputs_is_request"], texts["odd-llm"]["outputs_is_response"]) == (False, False)
    assert (texts["odd-tool"]["inputs"], texts["odd-tool"]["inputs_chars"], bool(texts["odd-tool"]["inputs_is_request"])) \
        == (None, None, False)


@pytest.mark.parametrize(("span_id", "field"), [
    (None, "request"), (None, "response"), (None, "metadata"), ("odd-llm", "inputs"), ("odd-llm", "outputs"),
    ("odd-llm", "attributes"), ("odd-llm", "events"), ("odd-tool", "inputs"), ("odd-root", "attributes")])
def test_paging_a_field_matches_and_reassembles_it(stored: Backend, span_id: str | None, field: str) -> None:
    store, whole = stored.traces, _Whole(stored.traces)
    full = whole.field_text("odd", span_id, field, 0, 10**9)
    assert full is not None
    pieces, offset = [], 0
    while True:
        got = store.field_text("odd", span_id, field, offset, 997)
        assert got == whole.field_text("odd", span_id, field, offset, 997)
        pieces.append(got[0])
        offset += 997
        if offset >= got[1]:
            break
    assert "".join(pieces) == full[0] and len(full[0]) == full[1]


def test_an_unknown_span_or_trace_reads_as_none(stored: Backend) -> None:
    assert stored.traces.field_text("odd", "no-such-span", "outputs", 0, 100) is None
    assert stored.traces.trace_outline("no-such-trace", 100) is None
    assert stored.traces.span_texts("odd", ["no-such-span"], 100, True) == {}


def test_get_trace_gives_the_same_view_on_every_engine(stored: Backend) -> None:
    for inp in (GetTraceInput(trace_id="odd", max_chars=4000), GetTraceInput(trace_id="t12", max_chars=4000),
                GetTraceInput(trace_id="odd", span_id="odd-llm", field="attributes"),
                GetTraceInput(trace_id="odd", field="response", offset=3000, max_chars=1000)):
        assert get_trace(stored.traces, inp) == get_trace(_Whole(stored.traces), inp)
    cut = get_trace(stored.traces, GetTraceInput(trace_id="t12", max_chars=4000)).trace.response
    marker = re.search(r"…\[truncated: (\d+) more chars; next: get_trace\(field='response', offset=(\d+)\)\]$", cut)
    assert marker and int(marker.group(1)) + int(marker.group(2)) == len(json.dumps({"content": "x" * 50_000}))
    with pytest.raises(NotFoundError, match="Did you mean"):
        get_trace(stored.traces, GetTraceInput(trace_id="t1"))


def test_a_long_trace_is_listed_in_pages(empty_backend: Backend) -> None:
    t = trace("long", 0)
    t.spans = [t.spans[0]] + [span(f"s{i:03d}", t.spans[0].span_id, "TOOL", 1_763_000_000_000 + i, 1,
                                   inputs=f"in {i}") for i in range(300)]
    empty_backend.traces.write_traces([t])
    seen, offset = [], 0
    while offset is not None:
        page = get_trace(empty_backend.traces, GetTraceInput(trace_id="long", max_chars=4000, span_offset=offset))
        assert page.span_total == 301
        seen += [s.span_id for s in page.spans]
        offset = page.next_span_offset
    assert seen == ["long-root"] + [f"s{i:03d}" for i in range(300)]


async def test_get_trace_pages_a_span_field_through_a_real_mcp_client(stored: Backend) -> None:
    """The piecewise reads behind the MCP tool: a tree page, then one span's field read to its end."""
    whole = _Whole(stored.traces).field_text("odd", None, "response", 0, 10**9)
    assert whole is not None
    async with Client(build_app(stored)) as client:
        tree = await client.call_tool("get_trace", {"trace_id": "odd", "max_chars": 8000})
        pieces, offset = [], 0
        while offset is not None:
            page = await client.call_tool("get_trace", {"trace_id": "odd", "field": "response", "offset": offset,
                                                        "max_chars": 3000})
            content = page.structured_content["content"]
            pieces.append(content["content"])
            offset = content["next_offset"]
    assert [s["span_id"] for s in tree.structured_content["spans"]] == ["odd-root", "odd-llm", "odd-tool"]
    assert tree.structured_content["spans"][0]["outputs"] == "(same as the trace's response)"
    assert len(pieces) > 2 and "".join(pieces) == whole[0]
