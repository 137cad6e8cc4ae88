"""tag_trace / untag_trace: batch, idempotent curation marks on traces.

Tags are how analysts and agents curate (``eval_candidate=error_case``); datasets are later
built from them. Every change is written to a history so nothing silently disappears, and the
result says which traces had another value of the key and what it was (counts per value and a
few example ids, never the whole selection), so one agent's tagging cannot quietly move traces
out of another's ``eval_candidate=error_case``.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tools.filters import parser
from tools.errors import InvalidInputError
from tools.ports import PreviousValue, TagChange, TraceStore

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_IDS = 10_000
#: Unknown ids echoed back; a call of 10,000 wrong ids should not answer with all of them.
MAX_UNKNOWN_LISTED = 20

TraceIds = Annotated[list[str] | None, Field(
    description="Trace ids to tag (from search_traces), up to 10000. Give either trace_ids or filter.")]
SelectFilter = Annotated[str | None, Field(
    description="Instead of ids: tag every trace this search filter matches, e.g. "
                "\"attributes.status = 'ERROR' AND tags.environment = 'production'\".")]
TagKey = Annotated[str, Field(min_length=1, max_length=250,
                              description="Tag key, e.g. 'eval_candidate'. No control characters.")]
TagValue = Annotated[str, Field(max_length=5000,
                                description="Tag value, e.g. 'error_case' (default 'true').")]


def _check_key(key: str) -> str:
    if key != key.strip() or _CONTROL.search(key):
        raise InvalidInputError(
            f"Tag key {key!r} has leading/trailing spaces or control characters. Use a plain key such "
            "as 'eval_candidate'.")
    return key


class _Selection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    trace_ids: TraceIds = None
    filter: SelectFilter = None

    @model_validator(mode="after")
    def _exactly_one(self) -> _Selection:
        has_ids = bool(self.trace_ids)
        has_filter = bool(self.filter and self.filter.strip())
        if has_ids == has_filter:
            raise ValueError("give exactly one of trace_ids (a non-empty list) or filter (a non-empty "
                             "search filter)")
        if self.trace_ids and len(self.trace_ids) > MAX_IDS:
            raise ValueError(f"at most {MAX_IDS} trace_ids per call; split the list or use filter")
        return self


class TagTraceInput(_Selection):
    key: TagKey
    value: TagValue = "true"


class UntagTraceInput(_Selection):
    key: TagKey


class TagResult(BaseModel):
    key: str
    value: str | None = Field(description="The value set; null for untag.")
    matched: int = Field(description="Traces selected by the ids or the filter.")
    changed: int = Field(description="Traces whose tag was added, changed or removed by this call.")
    unchanged: int = Field(description="Selected traces already in the requested state (calls are idempotent).")
    unknown_ids: list[str] = Field(description=f"Requested ids that are not in the store (nothing was done for "
                                               f"them); the first {MAX_UNKNOWN_LISTED}, see unknown_count.")
    unknown_count: int = Field(0, description="How many requested ids are not in the store.")
    replaced: int = Field(0, description="tag_trace: changed traces that had another value of the key, now "
                                         "overwritten (see previous_values); untag_trace: traces whose value was removed.")
    previous_values: list[PreviousValue] = Field(
        default_factory=list, description="The values replaced or removed: per value, how many traces had it and up "
                                          "to 3 example ids (at most 10 values, most common first). The tag history "
                                          "keeps every old value.")
    filter_explained: str | None = None


def _apply(store: TraceStore, sel: _Selection, key: str, *, write) -> TagResult:
    _check_key(key)
    expr = parser.parse(sel.filter) if sel.filter else None
    unknown: list[str] = []
    ids = None
    if sel.trace_ids:
        ids = list(dict.fromkeys(sel.trace_ids))
        known = store.known_trace_ids(ids)
        unknown = [i for i in ids if i not in known]
        ids = [i for i in ids if i in known]
    change: TagChange = write(ids, expr) if ids is None or ids else TagChange(matched=0, changed=0, unchanged=0)
    return TagResult(key=key, value=None, matched=change.matched, changed=change.changed,
                     unchanged=change.unchanged, unknown_ids=unknown[:MAX_UNKNOWN_LISTED],
                     unknown_count=len(unknown), replaced=change.replaced, previous_values=change.previous,
                     filter_explained=parser.explain(expr) if expr is not None else None)


def tag_trace(store: TraceStore, inp: TagTraceInput, *, by: str, now_ms: int) -> TagResult:
    """Set ``key=value`` on the selected traces; re-tagging with the same value changes nothing."""
    if _CONTROL.search(inp.value):
        raise InvalidInputError("Tag value contains control characters (e.g. newlines); remove them.")
    result = _apply(store, inp, inp.key, write=lambda ids, expr: store.set_tag(
        trace_ids=ids, expr=expr, key=inp.key, value=inp.value, by=by, now_ms=now_ms))
    return result.model_copy(update={"value": inp.value})


def untag_trace(store: TraceStore, inp: UntagTraceInput, *, by: str, now_ms: int) -> TagResult:
    """Remove ``key`` from the selected traces; the removal is kept in the tag history."""
    return _apply(store, inp, inp.key, write=lambda ids, expr: store.remove_tag(
        trace_ids=ids, expr=expr, key=inp.key, by=by, now_ms=now_ms))
