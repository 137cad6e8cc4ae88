"""get_trace: one trace's span tree, bounded by a character budget.

Traces can hold megabytes of prompts and tool payloads, far more than an agent's context.
The tree (ids, types, timings, statuses, tokens) always comes back in full; the free text
(inputs, outputs, attributes) shares what is left of ``max_chars`` fairly — short fields whole,
long ones cut to a common cap — and every cut says exactly which call fetches the rest.

Only what is returned is read (``ports.TraceReader``): the header, the span skeleton for the tree's
order, then text prefixes for the listed spans alone, or one page of one field. A 1,500-span,
30 MB trace answers any call in milliseconds (``bench/get_trace_bench.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tools.errors import InvalidInputError, NotFoundError
from tools.traces.ports import TraceReader
from tools.traces.search import iso_ms
from tools.traces.span_checks import cycle_breaks, span_problems

ContentField = Literal["inputs", "outputs", "attributes", "events", "request", "response", "metadata"]
TRACE_FIELDS = ("request", "response", "metadata")
SAME_AS_REQUEST = "(same as the trace's request)"
SAME_AS_RESPONSE = "(same as the trace's response)"
_MARKER_RESERVE = 90  # the truncation marker's own length, roughly


TraceId = Annotated[str, Field(min_length=1, description="Trace id, as search_traces returns it.")]
#: The most one answer may hold: with JSON quoting it stays inside the 25k-token result budget.
MAX_CHARS = 40_000
MaxChars = Annotated[int, Field(ge=1000, le=MAX_CHARS, description=(
    "Budget for the answer's text (1000-40000, default 16000); long fields are cut with a marker."))]
SpanId = Annotated[str | None, Field(description=(
    "Read this one span's full content page by page (with field and offset) instead of the tree."))]
FieldName = Annotated[ContentField, Field(description=(
    "With span_id: which span content to read ('inputs', 'outputs', 'attributes', 'events'). 'request', "
    "'response' or 'metadata' read the trace's own payloads page by page (no span_id needed)."))]
Offset = Annotated[int, Field(ge=0, description="Character offset to start reading `field` at.")]
SpanOffset = Annotated[int, Field(ge=0, description=(
    "Index of the first span to list (depth-first order); pass `next_span_offset` of a previous call."))]
IncludeAttributes = Annotated[bool, Field(description="Also return each span's raw attributes (JSON text).")]


class GetTraceInput(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    trace_id: TraceId
    max_chars: MaxChars = 16_000
    span_id: SpanId = None
    field: FieldName = "outputs"
    offset: Offset = 0
    span_offset: SpanOffset = 0
    include_attributes: IncludeAttributes = False


class SpanView(BaseModel):
    span_id: str
    parent_span_id: str | None
    depth: int = Field(description="0 for the root; children are listed right after their parent.")
    name: str
    type: str
    status: str
    status_message: str | None = None
    start_offset_ms: float = Field(description="Milliseconds after the trace's first span started.")
    duration_ms: float
    model: str | None = None
    tool_name: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    inputs: str | None = None
    outputs: str | None = None
    attributes: str | None = None


class TraceHeader(BaseModel):
    trace_id: str
    time: str
    status: str
    duration_ms: int | None
    name: str | None
    session_id: str | None
    user_id: str | None
    model: str | None
    environment: str | None
    prompt_version: str | None
    input_tokens: int | None
    output_tokens: int | None
    source: str
    tags: dict[str, str]
    metadata: str
    request: str | None
    response: str | None


class SpanContent(BaseModel):
    span_id: str | None
    field: str
    offset: int
    content: str
    total_chars: int
    next_offset: int | None = Field(description="Pass as `offset` to continue; null when this was the end.")


class GetTraceResult(BaseModel):
    trace: TraceHeader
    spans: list[SpanView]
    span_total: int
    next_span_offset: int | None = Field(description="More spans follow: call again with this span_offset.")
    truncated: bool = Field(description="True if any text was cut to fit max_chars (see the markers).")
    content: SpanContent | None = Field(None, description="Set when span_id/field asked for one span's content.")
    problems: list[str] = Field(default_factory=list, description=(
        "Odd spans kept as the source sent them: parent cycles (and where the tree breaks them), "
        "self-parented spans, negative or reversed times."))


@dataclass(frozen=True)
class _Link:
    """What ``span_checks`` reads of a span: a skeleton row's ids and times."""

    span_id: str
    parent_span_id: str | None
    start_time_ns: int
    end_time_ns: int


def _links(skeleton: list[dict[str, Any]]) -> list[_Link]:
    return [_Link(s["span_id"], s["parent_span_id"], s["start_time_ns"], s["end_time_ns"]) for s in skeleton]


def _depth_first(spans: list[dict[str, Any]]) -> list[tuple[dict[str, Any], int]]:
    """Every span once, children right after their parent. A span whose parent is missing is listed
    at the top; a parent loop is broken at the span ``span_checks`` names (so no span is hidden)."""
    ids = {s["span_id"] for s in spans}
    breaks = cycle_breaks(_links(spans))
    children: dict[str | None, list[dict[str, Any]]] = {}
    for s in spans:
        parent = s["parent_span_id"] if s["parent_span_id"] in ids and s["span_id"] not in breaks else None
        children.setdefault(parent, []).append(s)
    ordered: list[tuple[dict[str, Any], int]] = []
    stack = [(s, 0) for s in reversed(sorted(children.get(None, []), key=lambda s: s["start_time_ns"]))]
    while stack:
        span, depth = stack.pop()
        ordered.append((span, depth))
        kids = sorted(children.get(span["span_id"], []), key=lambda s: s["start_time_ns"])
        stack.extend((k, depth + 1) for k in reversed(kids))
    return ordered


def _fair_cap(sizes: list[int], budget: int) -> int:
    """Largest per-field cap c with sum(min(size, c) + marker) within budget (water-filling)."""
    if sum(sizes) <= budget:
        return max(sizes, default=0)
    lo, hi = 0, max(sizes, default=0)  # no fields and a spent budget: nothing to share
    while lo < hi:
        mid = (lo + hi + 1) // 2
        cost = sum(s if s <= mid else mid + _MARKER_RESERVE for s in sizes)
        lo, hi = (mid, hi) if cost <= budget else (lo, mid - 1)
    return lo


def _not_found(store: TraceReader, trace_id: str) -> NotFoundError:
    close = store.similar_trace_ids(trace_id, 3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else " The store is empty."
    return NotFoundError(f"No trace with id '{trace_id}'.{hint} Find ids with search_traces.")


def _content_page(store: TraceReader, inp: GetTraceInput, spans: list[dict[str, Any]]) -> SpanContent:
    """One page of one field, read from the store at the offset asked for."""
    span_id = None if inp.field in TRACE_FIELDS else inp.span_id
    found = store.field_text(inp.trace_id, span_id, inp.field, inp.offset, inp.max_chars)
    if found is None:
        known = ", ".join(s["span_id"] for s in spans[:10])
        raise NotFoundError(f"Trace '{inp.trace_id}' has no span '{inp.span_id}'. Its spans: {known}.")
    chunk, total = found
    if inp.offset > total:
        raise InvalidInputError(f"offset {inp.offset} is past the end of {inp.field} ({total} chars).")
    end = inp.offset + len(chunk)
    return SpanContent(span_id=inp.span_id, field=inp.field, offset=inp.offset, content=chunk,
                       total_chars=total, next_offset=end if end < total else None)


def get_trace(store: TraceReader, inp: GetTraceInput) -> GetTraceResult:
    """The header and one page of the tree (or one page of one field), reading only that from the store."""
    outline = store.trace_outline(inp.trace_id, inp.max_chars)
    if outline is None:
        raise _not_found(store, inp.trace_id)
    row, skeleton = outline
    ordered = _depth_first(skeleton)
    problems = span_problems(row["trace_id"], _links(skeleton))
    t0 = min((s["start_time_ns"] for s, _ in ordered), default=0)
    header = TraceHeader(
        trace_id=row["trace_id"], time=iso_ms(row["timestamp_ms"]) or "", status=row["status"],
        duration_ms=row["execution_time_ms"], name=row["name"], session_id=row["session_id"],
        user_id=row["user_id"], model=row["model"], environment=row["environment"],
        prompt_version=row["prompt_version"], input_tokens=row["input_tokens"], output_tokens=row["output_tokens"],
        source=row["source"], tags=row["tags"], metadata=row["metadata"], request=row["request"],
        response=row["response"])
    if inp.span_id is not None or inp.field in TRACE_FIELDS:
        content = _content_page(store, inp, [s for s, _ in ordered])
        chosen = [(s, d) for s, d in ordered if s["span_id"] == inp.span_id]
        header.request = header.response = None
        header.metadata = ""
        return GetTraceResult(trace=header, spans=[_view(s, d, t0) for s, d in chosen],
                              span_total=len(ordered), next_span_offset=None, truncated=False, content=content,
                              problems=problems)

    # The tree skeleton is never cut; if even that is over budget, list fewer spans and page.
    skeleton_budget = inp.max_chars // 2
    kept: list[SpanView] = []
    used = len(header.model_dump_json(exclude={"request", "response", "metadata"}))
    for span, depth in ordered[inp.span_offset:]:
        view = _view(span, depth, t0)
        size = len(view.model_dump_json(exclude={"inputs", "outputs", "attributes"}))
        if kept and used + size > skeleton_budget:
            break
        kept.append(view)
        used += size
    next_offset = inp.span_offset + len(kept) if inp.span_offset + len(kept) < len(ordered) else None

    # Only now is span text read, for the listed spans, and only as much of each field as could be shown.
    lengths: dict[tuple[int, str], int] = {
        (id(header), "request"): row["request_chars"] or 0, (id(header), "response"): row["response_chars"] or 0,
        (id(header), "metadata"): len(header.metadata)}
    texts = store.span_texts(inp.trace_id, [v.span_id for v in kept], inp.max_chars, inp.include_attributes)
    for view in kept:   # the root span usually repeats the trace's payloads: say so instead of paying twice
        text = texts.get(view.span_id, {})
        for name, same, marker in (("inputs", "inputs_is_request", SAME_AS_REQUEST),
                                   ("outputs", "outputs_is_response", SAME_AS_RESPONSE)):
            value = marker if text.get(same) else text.get(name)
            setattr(view, name, value)
            lengths[(id(view), name)] = len(marker) if text.get(same) else text.get(f"{name}_chars") or 0
        view.attributes = text.get("attributes")
        lengths[(id(view), "attributes")] = len(view.attributes or "")

    # The trace's own payloads are what an agent reads first: they get up to 40 % of the text budget,
    # the spans' inputs/outputs/attributes share the rest (and whatever the trace did not use).
    remaining = max(0, inp.max_chars - used)
    top = [(header, name) for name in ("request", "response", "metadata") if getattr(header, name)]
    below = [(view, name) for view in kept for name in ("inputs", "outputs", "attributes") if getattr(view, name)]
    top_budget = int(remaining * 0.4) if below else remaining
    truncated = False
    for slots, budget in ((top, top_budget), (below, None)):
        if budget is None:
            budget = remaining
        cap = _fair_cap([lengths[(id(obj), name)] for obj, name in slots], budget)
        for obj, name in slots:
            span_id = getattr(obj, "span_id", None)
            where = f"span_id='{span_id}', " if span_id else ""
            total = lengths[(id(obj), name)]
            text, was_cut = _cut(getattr(obj, name), total, cap, hint=f"get_trace({where}field='{name}', offset={cap})")
            setattr(obj, name, text)
            truncated |= was_cut
            remaining -= len(text)
    return GetTraceResult(trace=header, spans=kept, span_total=len(ordered), next_span_offset=next_offset,
                          truncated=truncated or next_offset is not None, problems=problems)


def _cut(head: str, total: int, limit: int, *, hint: str) -> tuple[str, bool]:
    """``head`` (a prefix of a ``total``-character text) cut to ``limit`` with a marker naming the rest."""
    if total <= limit:
        return head, False
    return head[:limit] + f"…[truncated: {total - limit} more chars; next: {hint}]", True


def _view(span: dict[str, Any], depth: int, t0: int) -> SpanView:
    return SpanView(
        span_id=span["span_id"], parent_span_id=span["parent_span_id"], depth=depth, name=span["name"] or "",
        type=span["span_type"], status=span["status"], status_message=span["status_message"],
        start_offset_ms=round((span["start_time_ns"] - t0) / 1e6, 3),
        duration_ms=round((span["end_time_ns"] - span["start_time_ns"]) / 1e6, 3), model=span["model"],
        tool_name=span["tool_name"], input_tokens=span["input_tokens"], output_tokens=span["output_tokens"])
