"""tag_trace / untag_trace against the real store: batch, idempotent, durable, honest about unknown ids."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from pydantic import ValidationError

from server.storage.duckdb.store import DuckDBTraceStore
from tools.errors import FilterError, InvalidInputError
from tools.traces.tagging import TagTraceInput, UntagTraceInput, tag_trace, untag_trace


def _tags(path: Path) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT trace_id, key, value FROM tags ORDER BY ALL").fetchall()
    finally:
        con.close()


def tag(store: DuckDBTraceStore, **kw) -> object:
    return tag_trace(store, TagTraceInput(**kw), by="test", now_ms=1000)


def test_tagging_ids_reports_matched_changed_and_unknown(store: DuckDBTraceStore) -> None:
    result = tag(store, trace_ids=["t01", "t02", "nope"], key="eval_candidate", value="error_case")
    assert (result.matched, result.changed, result.unchanged, result.unknown_ids) == (2, 2, 0, ["nope"])
    assert store.load_trace("t02").tags["eval_candidate"] == "error_case"


def test_tagging_twice_with_the_same_value_changes_nothing(store: DuckDBTraceStore, db_path: Path) -> None:
    tag(store, trace_ids=["t01", "t02"], key="k", value="v")
    before = _tags(db_path)
    again = tag(store, trace_ids=["t01", "t02"], key="k", value="v")
    assert (again.matched, again.changed, again.unchanged) == (2, 0, 2)
    assert _tags(db_path) == before


def test_a_new_value_replaces_the_old_and_history_keeps_both(store: DuckDBTraceStore) -> None:
    tag(store, trace_ids=["t01"], key="k", value="a")
    result = tag(store, trace_ids=["t01"], key="k", value="b")
    assert result.changed == 1 and store.load_trace("t01").tags["k"] == "b"
    history = [(h["value"], h["op"]) for h in store.tag_history("t01") if h["key"] == "k"]
    assert history == [("a", "set"), ("b", "set")]


def test_tagging_by_filter_selects_every_match(store: DuckDBTraceStore) -> None:
    result = tag(store, filter="attributes.status = 'ERROR'", key="bad", value="yes")
    assert result.matched == 3 and result.changed == 3
    assert result.filter_explained
    tagged = {t for t in ["t02", "t05", "t09"] if store.load_trace(t).tags.get("bad") == "yes"}
    assert tagged == {"t02", "t05", "t09"}


def test_untag_removes_and_records_the_removal(store: DuckDBTraceStore) -> None:
    tag(store, trace_ids=["t01", "t02"], key="k", value="v")
    result = untag_trace(store, UntagTraceInput(trace_ids=["t01", "t03", "zz"], key="k"), by="test", now_ms=2000)
    assert (result.matched, result.changed, result.unchanged, result.unknown_ids) == (2, 1, 1, ["zz"])
    assert "k" not in store.load_trace("t01").tags and store.load_trace("t02").tags["k"] == "v"
    assert [h["op"] for h in store.tag_history("t01") if h["key"] == "k"] == ["set", "delete"]


def test_only_unknown_ids_changes_nothing_and_says_so(store: DuckDBTraceStore, db_path: Path) -> None:
    before = _tags(db_path)
    result = tag(store, trace_ids=["x1", "x2"], key="k")
    assert (result.matched, result.changed, result.unknown_ids) == (0, 0, ["x1", "x2"])
    assert _tags(db_path) == before


@pytest.mark.parametrize("kwargs, message", [
    ({"key": "k"}, "give exactly one of trace_ids"),
    ({"key": "k", "trace_ids": ["t01"], "filter": "attributes.status = 'OK'"}, "give exactly one of trace_ids"),
    ({"key": "k", "trace_ids": []}, "give exactly one of trace_ids"),
    ({"key": "", "trace_ids": ["t01"]}, "at least 1 character"),
])
def test_bad_selections_are_rejected_before_any_write(kwargs: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TagTraceInput(**kwargs)


def test_bad_key_or_filter_writes_nothing(store: DuckDBTraceStore, db_path: Path) -> None:
    before = _tags(db_path)
    with pytest.raises(InvalidInputError, match="control characters"):
        tag(store, trace_ids=["t01"], key="bad\nkey")
    with pytest.raises(FilterError):
        tag(store, filter="attributes.stauts = 'ERROR'", key="k")
    assert _tags(db_path) == before
