"""What is odd about a trace's spans, said out loud instead of hidden.

Exporters have bugs: a span names itself as its parent, a few spans point at each other in a loop,
a span ends before it starts or starts before 1970. The store keeps such spans exactly as they
arrived (dropping them would lose data, and "fixing" them would invent it), so two things must hold
instead: the ingest report warns about each one, and ``get_trace`` still shows every span, with a
parent loop broken at a span it names. Both use this module, so they say the same thing.

The break point of a loop is its earliest-starting span (then the smallest id): a stable choice
that does not depend on the order in which spans arrived.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["SpanLike", "cycle_breaks", "root_ids", "span_problems"]

#: Warnings listed per trace at most; the rest are counted in one line.
MAX_PROBLEMS_PER_TRACE = 5


class SpanLike(Protocol):
    span_id: str
    parent_span_id: str | None
    start_time_ns: int
    end_time_ns: int


def _cycles(spans: Sequence[SpanLike]) -> list[list[SpanLike]]:
    """Each parent loop once, as its spans in parent-walk order (one walk per span, O(n))."""
    by_id = {s.span_id: s for s in spans}
    state: dict[str, int] = {}  # 1 = on the current walk, 2 = settled
    loops: list[list[SpanLike]] = []
    for start in spans:
        path: list[SpanLike] = []
        node: SpanLike | None = start
        while node is not None and node.span_id not in state:
            state[node.span_id] = 1
            path.append(node)
            parent = node.parent_span_id
            node = by_id.get(parent) if parent else None
        if node is not None and state.get(node.span_id) == 1:  # walked back into this walk: a loop
            loops.append(path[next(i for i, s in enumerate(path) if s.span_id == node.span_id):])
        for visited in path:
            state[visited.span_id] = 2
    return loops


def _break_point(loop: list[SpanLike]) -> SpanLike:
    return min(loop, key=lambda s: (s.start_time_ns, s.span_id))


def cycle_breaks(spans: Sequence[SpanLike]) -> set[str]:
    """Ids of the spans at which parent loops are broken: shown (and rolled up) as if parentless."""
    return {_break_point(loop).span_id for loop in _cycles(spans)}


def root_ids(spans: Sequence[SpanLike]) -> list[str]:
    """The trace's roots: spans with no parent id, plus loop break points. A span whose parent has
    not arrived (yet) is not a root: that is how a partly received trace stays IN_PROGRESS."""
    breaks = cycle_breaks(spans)
    return [s.span_id for s in spans if not s.parent_span_id or s.span_id in breaks]


def span_problems(trace_id: str, spans: Sequence[SpanLike]) -> list[str]:
    """One warning per odd span or loop, each naming the trace, the span(s) and what was kept."""
    problems: list[str] = []
    for loop in _cycles(spans):
        cut = _break_point(loop)
        if len(loop) == 1:
            problems.append(f"trace '{trace_id}': span '{cut.span_id}' names itself as its parent; stored as "
                            "sent and shown as a root span")
        else:
            chain = " -> ".join(f"'{s.span_id}'" for s in loop) + f" -> '{loop[0].span_id}'"
            problems.append(f"trace '{trace_id}': spans {chain} form a parent cycle; stored as sent and shown "
                            f"with the cycle broken at span '{cut.span_id}' (as a root span)")
    for span in spans:
        if span.start_time_ns < 0:
            problems.append(f"trace '{trace_id}': span '{span.span_id}' starts before 1970 "
                            f"(start_time_ns {span.start_time_ns}); stored as sent, check the exporter's clock")
        if span.end_time_ns < span.start_time_ns:
            ms = f"{(span.start_time_ns - span.end_time_ns) / 1e6:,.3f}".rstrip("0").rstrip(".")
            problems.append(f"trace '{trace_id}': span '{span.span_id}' ends {ms} ms before it starts; "
                            "stored as sent (its duration counts as 0)")
    if len(problems) > MAX_PROBLEMS_PER_TRACE:
        more = len(problems) - MAX_PROBLEMS_PER_TRACE
        problems = problems[:MAX_PROBLEMS_PER_TRACE] + [f"trace '{trace_id}': {more} more span problems like these"]
    return problems
