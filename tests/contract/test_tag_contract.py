"""tag_trace / untag_trace on every engine: by ids or by filter, idempotent, every change in the history."""

from __future__ import annotations

from server.storage.backend import Backend
from tools.traces.search import SearchTracesInput, search_traces
from tools.traces.tagging import TagTraceInput, UntagTraceInput, tag_trace, untag_trace


def tag(backend: Backend, **kw) -> object:
    return tag_trace(backend.traces, TagTraceInput(**kw), by="test", now_ms=1000)


def untag(backend: Backend, **kw) -> object:
    return untag_trace(backend.traces, UntagTraceInput(**kw), by="test", now_ms=2000)


def tagged(backend: Backend, filter: str) -> set[str]:
    page = search_traces(backend.traces, SearchTracesInput(filter=filter, limit=200), now_ms=0)
    return {t.trace_id for t in page.traces}


def test_tagging_by_filter_selects_every_match_and_reports_the_counts(backend: Backend) -> None:
    result = tag(backend, filter="span.type = 'TOOL' AND span.status = 'ERROR'", key="eval_candidate",
                 value="tool_error")
    assert (result.matched, result.changed, result.unchanged) == (2, 2, 0)
    assert tagged(backend, "tags.eval_candidate = 'tool_error'") == {"t03", "t09"}
    # t07 already had eval_candidate=slow: a filter that includes it changes its value.
    again = tag(backend, filter="tags.eval_candidate IS NOT NULL", key="eval_candidate", value="tool_error")
    assert (again.matched, again.changed, again.unchanged) == (3, 1, 2)


def test_tagging_ids_reports_unknown_ones_and_is_idempotent(backend: Backend) -> None:
    first = tag(backend, trace_ids=["t01", "t02", "nope"], key="k", value="v")
    assert (first.matched, first.changed, first.unchanged, first.unknown_ids) == (2, 2, 0, ["nope"])
    again = tag(backend, trace_ids=["t01", "t02"], key="k", value="v")
    assert (again.matched, again.changed, again.unchanged) == (2, 0, 2)
    assert backend.traces.load_trace("t02").tags == {"environment": "production", "k": "v"}


def test_a_new_value_replaces_the_old_and_the_history_keeps_both(backend: Backend) -> None:
    tag(backend, trace_ids=["t01"], key="k", value="a")
    tag_trace(backend.traces, TagTraceInput(trace_ids=["t01"], key="k", value="b"), by="test", now_ms=1500)
    assert backend.traces.load_trace("t01").tags["k"] == "b"
    untag(backend, trace_ids=["t01"], key="k")
    history = [(h["value"], h["op"], h["at_ms"]) for h in backend.traces.tag_history("t01") if h["key"] == "k"]
    assert history == [("a", "set", 1000), ("b", "set", 1500), ("b", "delete", 2000)]


def test_untagging_by_filter_removes_only_the_selected_traces_tag(backend: Backend) -> None:
    result = untag(backend, filter="tags.environment = 'staging' AND attributes.status = 'ERROR'", key="environment")
    assert (result.matched, result.changed) == (2, 2)
    assert tagged(backend, "tags.environment IS NULL") == {"t05", "t09"}
    assert tagged(backend, "tags.environment = 'staging'") == {"t04", "t10"}
    again = untag(backend, filter="tags.environment IS NULL", key="environment")
    assert (again.matched, again.changed, again.unchanged) == (2, 0, 2)
    tag(backend, trace_ids=["t05"], key="environment", value="staging")
    assert tagged(backend, "tags.environment = 'staging'") == {"t04", "t05", "t10"}


def test_concurrent_tag_writes_lose_nothing(backend: Backend) -> None:
    """Eight callers (an HTTP server's worker threads) tag at once: every write lands, once."""
    from concurrent.futures import ThreadPoolExecutor

    def work(i: int) -> int:
        return tag(backend, trace_ids=[f"t{i % 12 + 1:02d}", f"t{(i + 5) % 12 + 1:02d}"], key=f"k{i}",
                   value="v").changed

    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(work, range(24))) == 48
    for i in range(24):
        assert tagged(backend, f"tags.k{i} = 'v'") == {f"t{i % 12 + 1:02d}", f"t{(i + 5) % 12 + 1:02d}"}
    history = [h for n in range(1, 13) for h in backend.traces.tag_history(f"t{n:02d}") if h["key"].startswith("k")]
    assert len(history) == 48


def test_odd_tag_keys_and_values_travel_as_parameters(backend: Backend) -> None:
    value = "it's \"quoted\" \\ and ünïcode ✓"
    tag(backend, trace_ids=["t04"], key="team.owner's", value=value)
    assert backend.traces.load_trace("t04").tags["team.owner's"] == value
    assert tagged(backend, "tags.`team.owner's` = 'it''s \"quoted\" \\ and ünïcode ✓'") == {"t04"}
    assert tagged(backend, "tags.`team.owner's` LIKE '%ünïcode%'") == {"t04"}
    assert tagged(backend, "tags.`team.owner` IS NOT NULL") == set()
