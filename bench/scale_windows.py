"""``python -m bench.scale_windows --store FOLDER``: ClickHouse searches, unbounded vs newest-first windows.

Issue 15's scale bench found every ClickHouse search without a time bound reading all of ``traces``.
The store now reads newest-first through widening windows (``server/storage/clickhouse/page_query.py``).
This bench asks the same chdb store (one made by ``bench.scale``), in one process and one run, every
search shape of ``bench.workloads`` and page-token paging to page 10, by the old path (the window
threshold raised past the store's size, so each search is the one unbounded query the store sent
before) and by the new one, alternating the two per shape; it prints the medians, their ratio, the
answers' equality, and the granules ``EXPLAIN indexes = 1`` says each path read for the default search.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.datagen import ensure_dataset
from bench.measure import Timing, machine, measure
from bench.scale import captured_sql, explain
from bench.scale_report import explain_summary
from bench.workloads import search_questions
from server.storage.clickhouse import page_query
from server.storage.factory import StoreUrl, build_backend
from tools.traces.search import SearchTracesInput, search_traces


@contextmanager
def unbounded() -> Iterator[None]:
    """The store as it was before windows: no store is large enough to be read by windows."""
    saved = page_query.WINDOW_MIN_TRACES
    page_query.WINDOW_MIN_TRACES = 2**62
    try:
        yield
    finally:
        page_query.WINDOW_MIN_TRACES = saved


def cases(store: Any, now_ms: int) -> dict[str, Callable[[], Any]]:
    """The calls timed, by row title; each returns what the two paths must agree on."""
    def search(flt: str, token: str | None = None) -> Any:
        return search_traces(store, SearchTracesInput(filter=flt, limit=20, page_token=token), now_ms=now_ms)

    def answer(flt: str) -> tuple:
        r = search(flt)
        return [t.trace_id for t in r.traces], r.total_matches, r.total_exact, r.next_page_token

    def page_to_10() -> list[str]:
        token, seen = None, []
        for _ in range(10):
            r = search("", token)
            seen += [t.trace_id for t in r.traces]
            if (token := r.next_page_token) is None:
                break
        return seen

    out: dict[str, Callable[[], Any]] = {q.title: (lambda q=q: answer(q.tracesieve)) for q in search_questions(now_ms)}
    out["search: page-token paging to page 10 (20/page)"] = page_to_10
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, help="a chdb folder made by bench.scale")
    parser.add_argument("--data-dir", type=Path, required=True, help="bench.scale's --data-dir (for the clock)")
    parser.add_argument("--traces", type=int, default=38023, help="traces bench.scale generated (its n)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per case and path, at most")
    parser.add_argument("--only", default="", help="comma-separated words: time only the shapes whose title has one")
    parser.add_argument("--out", type=Path, default=None, help="JSON of every figure")
    args = parser.parse_args(argv)
    ds = ensure_dataset(args.traces, data_dir=args.data_dir, log=lambda m: print(m, file=sys.stderr, flush=True))
    backend = build_backend(StoreUrl("chdb", path=args.store))
    store = backend.traces
    traces, spans = store.client.read("SELECT count(), sum(span_count) FROM traces")[0]  # type: ignore[attr-defined]
    rows: dict[str, dict[str, Any]] = {}
    for title, fn in cases(store, ds.now_ms).items():
        if args.only and not any(w in title for w in args.only.split(",")):
            continue
        print(f"  {title}", file=sys.stderr, flush=True)
        with unbounded():
            old: Timing = measure(fn, repeats=args.repeats, budget_s=args.budget)
            old_answer = fn()
        new = measure(fn, repeats=args.repeats, budget_s=args.budget)
        rows[title] = {"unbounded": old.as_dict(), "windowed": new.as_dict(), "same_answer": fn() == old_answer}
    plans: dict[str, str] = {}
    for path in ("unbounded", "windowed"):
        with captured_sql(backend) as seen, (unbounded() if path == "unbounded" else _nothing()):
            search_traces(store, SearchTracesInput(), now_ms=ds.now_ms)
        plans[path] = "\n\n".join(explain(backend, [s for s in seen if "FROM traces" in s[0]]))
        rows["EXPLAIN default search"] = rows.get("EXPLAIN default search", {}) | {
            path: explain_summary(explain(backend, seen))}
    meta = {"machine": machine(), "load_average": os.getloadavg(), "traces": int(traces), "spans": int(spans),
            "repeats": args.repeats}
    if args.out:
        args.out.write_text(json.dumps({"meta": meta, "rows": rows, "plans": plans}, indent=1, default=str))
    print(markdown(meta, rows))


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def markdown(meta: dict[str, Any], rows: dict[str, dict[str, Any]]) -> str:
    lines = [f"{meta['traces']:,} traces / {meta['spans']:,} spans in chdb; median of {meta['repeats']} after a "
             f"warm-up; load average at the end {tuple(round(x, 1) for x in meta['load_average'])}", "",
             "| search | unbounded (before) | windowed (now) | before / now | same answer |", "|---|---:|---:|---:|:-:|"]
    for title, r in rows.items():
        if "same_answer" not in r:
            continue
        old, new = r["unbounded"]["median_s"] * 1000, r["windowed"]["median_s"] * 1000
        lines.append(f"| {title} | {old:,.0f} ms | {new:,.0f} ms | {old / new:.1f}× | {'yes' if r['same_answer'] else 'NO'} |")
    explain_row = rows.get("EXPLAIN default search", {})
    lines += ["", f"- default search, granules read (EXPLAIN indexes = 1): before: {explain_row.get('unbounded')}; "
              f"now: {explain_row.get('windowed')}"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
