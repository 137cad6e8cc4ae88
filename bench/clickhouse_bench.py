"""``python -m bench.clickhouse_bench [--traces N]``: the ClickHouse engine (chdb) beside DuckDB.

The same demo traces are loaded into a DuckDB file and a chdb database in one run, then the
same tool calls run on both: ingest, the search shapes agents use, get_trace, tag-by-filter.
Figures are medians; the ratio is chdb's time over DuckDB's (below 1: chdb is faster), the
baseline being DuckDB measured in the same run on the same data. Last, ``EXPLAIN indexes = 1``
shows the partition and primary-key pruning a time-bounded search gets on ClickHouse.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from server.demo.generate import generate_demo_traces
from server.storage.backend import Backend
from server.storage.factory import StoreUrl, build_backend
from tools.models import Trace
from tools.traces.search import SearchTracesInput, search_traces
from tools.traces.tagging import TagTraceInput, tag_trace
from tools.traces.view import GetTraceInput, get_trace

NOW_MS = 1_765_000_000_000
CHUNK = 10_000
BATCH = 2_000
SEARCHES = {
    "search: newest page": "",
    "search: status = ERROR": "attributes.status = 'ERROR'",
    "search: last 24 h": "attributes.timestamp_ms > now() - 1d",
    "search: tag": "tags.environment = 'production'",
    "search: span type+status": "span.type = 'TOOL' AND span.status = 'ERROR'",
    "search: text contains": "text CONTAINS 'refund'",
    "search: metadata": "metadata.customer_tier = 'gold'",
}


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def chunks(n: int) -> list[list[Trace]]:
    return [generate_demo_traces(min(CHUNK, n - i), seed=7 + i, now_ms=NOW_MS) for i in range(0, n, CHUNK)]


def load(backend: Backend, data: list[list[Trace]]) -> float:
    started = time.perf_counter()
    for chunk in data:
        for i in range(0, len(chunk), BATCH):
            backend.traces.write_traces(chunk[i:i + BATCH])
    return time.perf_counter() - started


def cases(backend: Backend, sample_id: str) -> dict[str, Callable[[], object]]:
    store = backend.traces
    out: dict[str, Callable[[], object]] = {
        name: (lambda f=f: search_traces(store, SearchTracesInput(filter=f, limit=20), now_ms=NOW_MS))
        for name, f in SEARCHES.items()}
    out["search: by duration, page 1"] = lambda: search_traces(
        store, SearchTracesInput(order_by=["attributes.execution_time_ms DESC"], limit=20), now_ms=NOW_MS)
    out["get_trace"] = lambda: get_trace(store, GetTraceInput(trace_id=sample_id))
    rounds = iter(range(10**9))
    out["tag_trace by filter (all ERROR traces)"] = lambda: tag_trace(store, TagTraceInput(
        filter="attributes.status = 'ERROR'", key="bench", value=f"v{next(rounds)}"), by="bench", now_ms=NOW_MS)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/tracesieve-bench/clickhouse"))
    args = parser.parse_args()
    shutil.rmtree(args.data_dir, ignore_errors=True)
    args.data_dir.mkdir(parents=True)
    data = chunks(args.traces)
    spans = sum(len(t.spans) for chunk in data for t in chunk)
    backends = {"duckdb": build_backend(StoreUrl("duckdb", path=args.data_dir / "traces.duckdb")),
                "chdb": build_backend(StoreUrl("chdb", path=args.data_dir / "chdb"))}
    rows: dict[str, dict[str, float]] = {"ingest (s)": {}}
    for name, backend in backends.items():
        rows["ingest (s)"][name] = load(backend, data)
    sample_id = data[-1][-1].trace_id
    for name, backend in backends.items():
        for case, fn in cases(backend, sample_id).items():
            rows.setdefault(case, {})[name] = median_seconds(fn, args.repeats)
    print(f"{args.traces:,} demo traces, {spans:,} spans; median of {args.repeats} after a warm-up\n")
    print("| workload | DuckDB | chdb | chdb / DuckDB |")
    print("|---|---|---|---|")
    for case, t in rows.items():
        unit = "s" if case.startswith("ingest") else "ms"
        scale = 1 if unit == "s" else 1000
        print(f"| {case} | {t['duckdb'] * scale:.1f} {unit} | {t['chdb'] * scale:.1f} {unit} | "
              f"{t['chdb'] / t['duckdb']:.2f} |")
    ingest = rows["ingest (s)"]
    print(f"\ningest spans/s: DuckDB {spans / ingest['duckdb']:,.0f}, chdb {spans / ingest['chdb']:,.0f}")
    client = backends["chdb"].traces.client  # type: ignore[attr-defined]
    plan = client.raw.query("EXPLAIN indexes = 1 SELECT count() FROM traces AS t FINAL "
                            "WHERE t.timestamp_ms > {since:Int64}", parameters={"since": NOW_MS - 86_400_000})
    print("\nEXPLAIN indexes = 1, traces of the last 24 h (chdb):")
    print("\n".join(r[0] for r in plan.result_rows if any(k in r[0] for k in ("Partition", "PrimaryKey", "Parts:",
                                                                              "Granules:", "Condition"))))


if __name__ == "__main__":
    main()
