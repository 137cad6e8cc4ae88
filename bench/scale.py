"""``python -m bench.scale --spans N``: DuckDB and the ClickHouse engine (chdb) at tens of millions of spans.

One run, same data for both: the bench's demo traces are generated once as OTLP/JSON files
(``bench.datagen``), loaded into a DuckDB file and a chdb database, each in its own process
(``bench.scale_load``: ingest as ``tracesieve ingest`` does, timed, with its peak RSS; then a
server-side copy of the traces under fresh ids up to ``--spans``), and then both answer the same
tool calls in this process: every search shape of ``bench.workloads``, paging to page 10,
``get_trace``, ``tag_trace`` by ids and by filter, and ``profile_traces`` / ``error_patterns`` where
the engine has them. Figures are medians (p95 and runs in the JSON); the ratio is chdb / DuckDB
(> 1: chdb slower). The SQL each chdb search runs is captured and re-run as ``EXPLAIN indexes = 1``,
saved in full to ``--explain-out``, and its parts/granules kept summarised in the table, which is
how the time and partition pruning each search relies on is shown, not claimed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.datagen import ensure_dataset
from bench.measure import Timing, machine, measure
from bench.scale_report import explain_summary, markdown
from bench.tracesieve_side import TraceSieveSide
from bench.workloads import search_questions
from server.storage.backend import Backend
from server.storage.factory import StoreUrl, build_backend
from tools.analysis.error_patterns import ErrorPatternsInput, error_patterns
from tools.analysis.profiling import ProfileTracesInput, profile_traces
from tools.traces.tagging import TagTraceInput, tag_trace
from tools.traces.view import GetTraceInput, get_trace

SPANS_PER_TRACE = 5.26  # the demo generator's average (bench/datagen.py)
REPO = Path(__file__).resolve().parents[1]


def load(engine: str, store: Path, data_dir: Path, n: int, copies: int) -> dict[str, Any]:
    """``bench.scale_load`` in a child process (its peak RSS is its own; chdb's folder is released)."""
    done = subprocess.run([sys.executable, "-m", "bench.scale_load", engine, str(store), str(data_dir), str(n),
                           str(copies)], cwd=REPO, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextmanager
def captured_sql(backend: Backend) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every read statement the ClickHouse store sends while the block runs (SQL as sent, params)."""
    client = backend.traces.client  # type: ignore[attr-defined]
    seen: list[tuple[str, dict[str, Any]]] = []
    raw_query = client.raw.query

    def recording(sql: str, parameters: dict[str, Any] | None = None, **kw: Any) -> Any:
        seen.append((sql, dict(parameters or {})))
        return raw_query(sql, parameters=parameters, **kw)

    client.raw.query = recording
    try:
        yield seen
    finally:
        client.raw.query = raw_query


def explain(backend: Backend, statements: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """``EXPLAIN indexes = 1`` of each captured statement, as text."""
    raw = backend.traces.client.raw  # type: ignore[attr-defined]
    return ["\n".join(r[0] for r in raw.query(f"EXPLAIN indexes = 1 {sql}", parameters=params).result_rows)
            for sql, params in statements if sql.lstrip().upper().startswith("SELECT")]


def cases(side: TraceSieveSide, backend: Backend, sample_ids: list[str], now_ms: int) -> dict[str, Callable[[], Any]]:
    """The calls timed on each engine, by row title."""
    out: dict[str, Callable[[], Any]] = {
        q.title: (lambda q=q: side.search(q.tracesieve).total_matches) for q in search_questions(now_ms)}
    out["search: page-token paging to page 10 (20/page)"] = lambda: side.page_to("")
    ids = iter(sample_ids * 1000)
    out["get_trace (a different trace each call)"] = lambda: len(
        get_trace(backend.traces, GetTraceInput(trace_id=next(ids))).spans or [])
    rounds = iter(range(10**9))
    tagged = list(side.ds.tagged)[:1000]
    out["tag_trace by 1000 ids"] = lambda: tag_trace(backend.traces, TagTraceInput(
        trace_ids=tagged, key="bench_ids", value=f"v{next(rounds)}"), by="bench", now_ms=now_ms).changed
    out["tag_trace by filter (all ERROR traces)"] = lambda: tag_trace(backend.traces, TagTraceInput(
        filter="attributes.status = 'ERROR'", key="bench_filter", value=f"v{next(rounds)}"), by="bench",
        now_ms=now_ms).changed
    analytics = getattr(backend.features, "analytics", None) if backend.features else None
    if analytics is not None:
        out["profile_traces, last 24 h"] = lambda: profile_traces(
            analytics, ProfileTracesInput(filter="attributes.timestamp_ms > now() - 1d"), now_ms=now_ms)
        out["profile_traces, all traces"] = lambda: profile_traces(analytics, ProfileTracesInput(), now_ms=now_ms)
        out["error_patterns, 24 h vs previous"] = lambda: error_patterns(
            analytics, ErrorPatternsInput(window="24h"), now_ms=now_ms)
        out["error_patterns, 7 d vs previous"] = lambda: error_patterns(
            analytics, ErrorPatternsInput(window="7d"), now_ms=now_ms)
    return out


def run_cases(engine: str, backend: Backend, ds: Any, repeats: int, budget_s: float) -> tuple[
        dict[str, Timing], dict[str, list[str]]]:
    """Time every case on one engine; on ClickHouse also EXPLAIN what each one sent."""
    side = TraceSieveSide(ds, Path("unused"))
    side.store = backend.traces  # type: ignore[assignment]  # the tool calls take any TraceStore
    timings: dict[str, Timing] = {}
    plans: dict[str, list[str]] = {}
    analytics = getattr(backend.features, "analytics", None) if backend.features else None
    if analytics is not None:  # one-time set-up of the analyses (imports, caches) is not the first case's time
        error_patterns(analytics, ErrorPatternsInput(window="24h"), now_ms=ds.now_ms)
    for title, fn in cases(side, backend, ds.sample_ids, ds.now_ms).items():
        print(f"  {engine}: {title}", file=sys.stderr, flush=True)
        try:
            timings[title] = measure(fn, repeats=repeats, budget_s=budget_s)
        except Exception as error:  # a call that fails at this size is a result, reported as such
            timings[title] = Timing(error=f"{type(error).__name__}: {str(error).splitlines()[0][:160]}")
            print(f"    failed: {timings[title].error}", file=sys.stderr, flush=True)
            continue
        if engine != "duckdb" and not title.startswith("tag_trace"):
            with captured_sql(backend) as seen:
                fn()
            plans[title] = explain(backend, seen)
    return timings, plans


def grow(backend: Backend, factor: int, salt: str) -> dict[str, Any]:
    """chdb only: ``factor`` times the stored traces (copies under fresh ids), timed."""
    from bench.scale_load import replicate_clickhouse

    started = time.perf_counter()
    replicate_clickhouse(backend, factor, salt)
    seconds = time.perf_counter() - started
    client = backend.traces.client  # type: ignore[attr-defined]
    traces, spans = client.read("SELECT count(), sum(span_count) FROM traces")[0]
    return {"replicate_s": seconds, "traces": int(traces), "spans": int(spans)}


def chdb_state(backend: Backend, path: Path) -> dict[str, Any]:
    from bench.scale_load import folder_bytes

    client = backend.traces.client  # type: ignore[attr-defined]
    parts = dict(client.read("SELECT table, toInt64(count()) FROM system.parts WHERE database = currentDatabase() "
                             "AND active AND table IN ('traces', 'spans', 'tags') GROUP BY table"))
    return {"parts": parts, "store_bytes": folder_bytes(path)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", default="1000000",
                        help="spans per store, or a comma-separated list of growing sizes: DuckDB and chdb are "
                             "compared at the first, chdb alone is grown (copies) to each later one")
    parser.add_argument("--ingest-spans", type=int, default=None,
                        help="spans loaded through the ingest path (default: the first size, at most 1M); the rest "
                             "are server-side copies under fresh ids")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per case and engine, at most")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/tracesieve-bench/scale"))
    parser.add_argument("--out", type=Path, default=None, help="JSON of every figure (default: DATA_DIR/scale-N.json)")
    parser.add_argument("--reuse-stores", action="store_true",
                        help="keep the stores a previous run with the same sizes loaded (and its load figures)")
    parser.add_argument("--explain-out", type=Path, default=None,
                        help="the EXPLAIN indexes = 1 outputs (default: DATA_DIR/explain-N.txt)")
    args = parser.parse_args(argv)
    sizes = sorted(int(x) for x in str(args.spans).split(","))
    ingest_spans = args.ingest_spans or min(sizes[0], 1_000_000)
    n = max(1, round(ingest_spans / SPANS_PER_TRACE))
    copies = max(1, round(sizes[0] / ingest_spans))
    args.data_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    ds = ensure_dataset(n, data_dir=args.data_dir, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(f"data: {n:,} traces, {ds.spans:,} spans, {ds.bytes / 2**30:.2f} GiB of OTLP/JSON "
          f"({time.perf_counter() - started:.0f} s); {copies} copies", file=sys.stderr, flush=True)
    stores = {"duckdb": args.data_dir / f"scale-{sizes[0]}.duckdb", "chdb": args.data_dir / f"scale-{sizes[0]}-chdb"}
    loads = {}
    for engine, path in stores.items():
        saved = path.with_name(path.name + ".load.json")
        if args.reuse_stores and saved.exists() and path.exists():
            loads[engine] = json.loads(saved.read_text())
            print(f"reusing {engine} ({path})", file=sys.stderr, flush=True)
            continue
        print(f"loading {engine}", file=sys.stderr, flush=True)
        loads[engine] = load(engine, path, args.data_dir, n, copies)
        saved.write_text(json.dumps(loads[engine]))
        print(f"  {json.dumps(loads[engine])}", file=sys.stderr, flush=True)
    columns: dict[str, dict[str, Timing]] = {}
    plans: dict[str, dict[str, list[str]]] = {}
    duck = build_backend(StoreUrl("duckdb", path=stores["duckdb"]))
    columns["duckdb"], _ = run_cases("duckdb", duck, ds, args.repeats, args.budget)
    duck.traces.release()  # type: ignore[attr-defined]
    ch = build_backend(StoreUrl("chdb", path=stores["chdb"]))
    columns["chdb"], plans["chdb"] = run_cases("chdb", ch, ds, args.repeats, args.budget)
    loads["chdb"].update(chdb_state(ch, stores["chdb"]))
    for i, size in enumerate(sizes[1:], start=1):
        have = loads[f"chdb@{i - 1}" if i > 1 else "chdb"]["spans"]
        key = f"chdb@{i}"
        print(f"growing chdb to {size:,} spans", file=sys.stderr, flush=True)
        loads[key] = grow(ch, max(2, round(size / have)), salt=f"g{i}:")
        columns[key], plans[key] = run_cases(key, ch, ds, args.repeats, args.budget)
        loads[key].update(chdb_state(ch, stores["chdb"]))
    meta = {"machine": machine(), "load_average": os.getloadavg(), "traces_generated": n, "spans_generated": ds.spans,
            "otlp_bytes": ds.bytes, "copies": copies, "repeats": args.repeats, "wall_s": time.perf_counter() - started}
    out = args.out or args.data_dir / f"scale-{sizes[-1]}.json"
    out.write_text(json.dumps({"meta": meta, "loads": loads, "plans": plans,
                               "timings": {e: {k: t.as_dict() for k, t in ts.items()} for e, ts in columns.items()}},
                              indent=1, default=str))
    explain_out = args.explain_out or args.data_dir / f"explain-{sizes[-1]}.txt"
    explain_out.write_text("".join(
        f"## {column} ({loads[column]['spans']:,} spans): {title}\n\n" + "\n\n".join(p) + "\n\n"
        for column, found in plans.items() for title, p in found.items()))
    print(markdown(meta, loads, columns, {c: {t: explain_summary(p) for t, p in found.items()}
                                          for c, found in plans.items()}))
    print(f"\nJSON: {out}\nEXPLAIN outputs: {explain_out}", file=sys.stderr)


if __name__ == "__main__":
    main()
