"""``python -m bench.analysis_bench [--db STORE]``: profile_traces and error_patterns on a big store.

Baseline, measured in the same run: fetching the four span columns a per-trace Python profile needs
(trace_id, span_type, start, end) into Python — the floor under the seed's approach of pulling every
trace into pandas, before any of its arithmetic. The ratio says how much of that floor the tool costs.
Build the store first (e.g. ``python -m bench.run --sizes 1000000 --skip-mlflow --replicate-from 100000``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from server.storage.duckdb.analytics_sql import DuckDBAnalytics
from server.storage.duckdb.store import DuckDBTraceStore
from tools.analysis.error_patterns import ErrorPatternsInput, error_patterns
from tools.analysis.profiling import ProfileTracesInput, profile_traces

DEFAULT_DB = Path("/tmp/tracesieve-bench/ts-n1000000.duckdb")


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    store = DuckDBTraceStore(args.db, idle_release_s=60)
    analytics = DuckDBAnalytics(store)
    with store.reading() as con:
        traces, spans, newest = con.execute("SELECT (SELECT count(*) FROM traces), (SELECT count(*) FROM spans), "
                                            "(SELECT max(timestamp_ms) FROM traces)").fetchone()
        baseline = median_seconds(lambda: con.execute(
            "SELECT trace_id, span_type, start_time_ns, end_time_ns FROM spans").fetchall(), args.repeats)
    now = newest + 1
    cases = {
        "profile_traces, all traces": lambda: profile_traces(analytics, ProfileTracesInput(), now_ms=now),
        "profile_traces, last 24 h": lambda: profile_traces(
            analytics, ProfileTracesInput(filter="attributes.timestamp_ms > now() - 1d"), now_ms=now),
        "error_patterns, 24 h vs previous": lambda: error_patterns(
            analytics, ErrorPatternsInput(window="24h"), now_ms=now),
        "error_patterns, 7 d vs previous": lambda: error_patterns(
            analytics, ErrorPatternsInput(window="7d"), now_ms=now),
    }
    print(f"store {args.db}: {traces:,} traces, {spans:,} spans")
    print(f"baseline: fetch 4 span columns into Python: {baseline:.2f} s")
    print("| analysis | median s | ratio to baseline |")
    print("|---|---|---|")
    for label, fn in cases.items():
        seconds = median_seconds(fn, args.repeats)
        print(f"| {label} | {seconds:.2f} | {seconds / baseline:.2f} |")


if __name__ == "__main__":
    main()
