"""get_trace on one large trace: reading what is returned vs loading the whole trace.

A 1,500-span trace with ~30 MB of span inputs/outputs (the shape of a long agent run) is written
to a fresh DuckDB file among a few hundred small traces. For each kind of call an agent makes
(the first page of the tree, a later page, one span's field at an offset, the trace's response)
this times today's ``get_trace`` against the baseline measured in the same run: loading the
whole trace (``store.load_trace``), which every get_trace call did before building its view.

``--engine chdb`` runs the same calls on a fresh chdb store, against its old path measured in the
same run on the same store: get_trace answered by ``WholeTraceReading`` (every piece cut from
``load_trace``, so each call loaded the trace two or three times), as the ClickHouse store did
before ``clickhouse/trace_read.py``.

    .venv/bin/python -m bench.get_trace_bench [--engine duckdb|chdb] [--spans 1500] [--span-kb 10] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any
from pathlib import Path

from server.storage.duckdb.store import DuckDBTraceStore
from server.storage.factory import build_backend
from server.storage.urls import StoreUrl
from server.storage.whole_trace import WholeTraceReading
from tools.models import Span, Trace
from tools.traces import view

BASE_MS = 1_763_000_000_000


def big_trace(trace_id: str, spans: int, span_kb: int) -> Trace:
    """A root agent span with ``spans - 1`` LLM/tool children, each ~``span_kb`` KB of JSON in and out."""
    filler = "lorem ipsum dolor sit amet " * (span_kb * 1024 // 2 // 27)
    made = [Span(span_id="s0000", name="agent", span_type="AGENT", start_time_ns=BASE_MS * 10**6,
                 end_time_ns=(BASE_MS + spans * 10) * 10**6, status="OK",
                 inputs=json.dumps({"question": "q"}), outputs=json.dumps({"answer": "a"}))]
    for i in range(1, spans):
        start = (BASE_MS + i * 10) * 10**6
        kind = "TOOL" if i % 3 == 0 else "CHAT_MODEL"
        made.append(Span(span_id=f"s{i:04d}", parent_span_id="s0000" if i % 50 == 1 else f"s{i - 1:04d}"
                         if i % 50 else "s0000", name=f"step-{i}", span_type=kind, start_time_ns=start,
                         end_time_ns=start + 8 * 10**6, status="OK", tool_name="search" if kind == "TOOL" else None,
                         inputs=json.dumps({"i": i, "text": filler}), outputs=json.dumps({"i": i, "text": filler}),
                         attributes={"step": i}))
    return Trace(trace_id=trace_id, timestamp_ms=BASE_MS, execution_time_ms=spans * 10, status="OK", name="agent",
                 request=json.dumps({"question": "q"}), response=json.dumps({"answer": "a" * 40_000}),
                 source="bench", spans=made, tags={"environment": "bench"})


def small_trace(i: int) -> Trace:
    start = BASE_MS + i * 1000
    return Trace(trace_id=f"small-{i:04d}", timestamp_ms=start, execution_time_ms=5, status="OK", source="bench",
                 request="hi", response="hello", spans=[Span(span_id="r", start_time_ns=start * 10**6,
                                                              end_time_ns=(start + 5) * 10**6)])


def baseline(store: DuckDBTraceStore, inp: view.GetTraceInput) -> object:
    """The first step of every get_trace call before it read by the piece: load the whole trace.
    (Building the view on top cost more again, so the ratio is a lower bound.)"""
    return store.load_trace(inp.trace_id)


class WholeTracePath(WholeTraceReading):
    """get_trace's reads as the ClickHouse store answered them before: each cut from the whole trace."""

    def __init__(self, store: object) -> None:
        self.store = store

    def load_trace(self, trace_id: str) -> Trace | None:
        return self.store.load_trace(trace_id)  # type: ignore[attr-defined]

    def similar_trace_ids(self, trace_id: str, limit: int = 3) -> list[str]:
        return self.store.similar_trace_ids(trace_id, limit)  # type: ignore[attr-defined]


def open_store(engine: str, folder: Path) -> object:
    if engine == "duckdb":
        return DuckDBTraceStore(folder / "bench.duckdb")
    return build_backend(StoreUrl("chdb", path=folder / "chdb", database="get_trace_bench")).traces


def timed(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spans", type=int, default=1500)
    ap.add_argument("--span-kb", type=int, default=20, help="KB of inputs+outputs per span (20 -> ~30 MB in all)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--engine", choices=("duckdb", "chdb"), default="duckdb")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store: Any = open_store(args.engine, Path(tmp))
        store.write_traces([small_trace(i) for i in range(300)])
        trace = big_trace("big", args.spans, args.span_kb)
        megabytes = sum(len(s.inputs or "") + len(s.outputs or "") for s in trace.spans) / 1e6
        for part in range(0, len(trace.spans), 500):   # as an exporter sends a long trace: in batches
            store.write_traces([trace.model_copy(update={"spans": trace.spans[part: part + 500]})])
        calls = {
            "first page of the tree": view.GetTraceInput(trace_id="big"),
            "a later page (span_offset=1000)": view.GetTraceInput(trace_id="big", span_offset=1000),
            "one span's outputs at an offset": view.GetTraceInput(trace_id="big", span_id="s0777",
                                                                    field="outputs", offset=min(4000, args.span_kb * 256)),
            "the trace's response": view.GetTraceInput(trace_id="big", field="response", offset=0),
        }
        if args.engine == "duckdb":
            label_old = "baseline = whole trace loaded, as before"

            def old_path(inp: view.GetTraceInput) -> object:
                return baseline(store, inp)
        else:
            label_old = "baseline = get_trace over WholeTraceReading on the same chdb store"

            def old_path(inp: view.GetTraceInput) -> object:
                return view.get_trace(WholeTracePath(store), inp)
        print(f"{args.engine}: get_trace on one trace of {args.spans} spans, {megabytes:.1f} MB of span text "
              f"(median of {args.repeat}; {label_old})")
        print(f"{'call':36} {'baseline s':>11} {'get_trace s':>12} {'ratio':>8}")
        for label, inp in calls.items():
            old = timed(lambda inp=inp: old_path(inp), max(1, args.repeat // 2))
            new = timed(lambda inp=inp: view.get_trace(store, inp), args.repeat)
            print(f"{label:36} {old:11.3f} {new:12.4f} {old / new:7.0f}x")
        store.release()


if __name__ == "__main__":
    main()
