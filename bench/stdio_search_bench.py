"""search_traces over a real stdio MCP client vs MLflow's ``search_traces`` with spans, same traces.

An agent pages through matches 100 at a time. This walks the first ``--traces`` matches of three
plain filters (status, tag, tag + time window) both ways in the same run:
- tracesieve: ``tracesieve serve`` as a subprocess, ``search_traces(limit=100)`` over stdio, page token
  to page token; a page may hold fewer than 100 rows when 100 would not fit the result budget, so
  the walk counts traces, not pages;
- MLflow: ``MlflowClient.search_traces(max_results=100, include_spans=True)`` on its sqlite store.
Each walk is timed ``--repeats`` times after a warm-up; the figure is the ratio of medians.

    .venv/bin/python -m bench.stdio_search_bench [--n 10000] [--traces 300] [--repeats 5]

Data and stores are generated once under $TRACESIEVE_BENCH_DIR (default /tmp/tracesieve-bench) and
reused (MLflow's own bulk path loads ~70 traces/s, so 10k traces take a few minutes the first time).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from bench.datagen import default_data_dir, ensure_dataset
from bench.workloads import search_questions

PLAIN = ("search.status", "search.tag_eq", "search.tag_window")
REPO = Path(__file__).resolve().parents[1]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


async def tracesieve_walks(db: Path, filters: dict[str, str], want: int, repeats: int) -> dict[str, Any]:
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(command=sys.executable, args=["-m", "server", "serve", "--db", str(db)],
                                   cwd=str(REPO), env={**os.environ, "TRACESIEVE_LOCK_TIMEOUT": "30"})
    out: dict[str, Any] = {}
    async with Client(params) as client:
        for key, text in filters.items():
            async def walk() -> tuple[int, int]:
                seen, calls, token = 0, 0, None
                while seen < want:
                    args = {"filter": text, "limit": 100, **({"page_token": token} if token else {})}
                    page = (await client.call_tool("search_traces", args)).structured_content
                    seen, calls, token = seen + len(page["traces"]), calls + 1, page.get("next_page_token")
                    if not token:
                        break
                return seen, calls
            await walk()   # warm-up
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                seen, calls = await walk()
                times.append(time.perf_counter() - t0)
            out[key] = {"median_s": statistics.median(times), "traces": seen, "calls": calls}
    return out


def mlflow_walks(ml: Any, filters: dict[str, str], want: int, repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, text in filters.items():
        def walk() -> tuple[int, int]:
            seen, calls, token = 0, 0, None
            while seen < want:
                page = ml.client.search_traces(experiment_ids=[ml.eid], filter_string=text or None, max_results=100,
                                               order_by=["timestamp_ms DESC"], page_token=token, include_spans=True)
                seen, calls, token = seen + len(page), calls + 1, page.token
                if not token:
                    break
            return seen, calls
        walk()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            seen, calls = walk()
            times.append(time.perf_counter() - t0)
        out[key] = {"median_s": statistics.median(times), "traces": seen, "calls": calls}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="traces in the store")
    ap.add_argument("--traces", type=int, default=300, help="matches to walk per filter")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    from bench.mlflow_baseline import MlflowSide
    from bench.tracesieve_side import TraceSieveSide

    data_dir = default_data_dir()
    ds = ensure_dataset(args.n, data_dir=data_dir, log=log)
    questions = {q.key: q for q in search_questions(ds.now_ms)}
    ts = TraceSieveSide(ds, data_dir / f"ts-n{args.n}.duckdb")
    ts.load(reuse=True)
    ts.store.release()
    log("tracesieve over stdio")
    mine = anyio.run(tracesieve_walks, ts.db_path, {k: questions[k].tracesieve for k in PLAIN}, args.traces,
                     args.repeats)
    ml = MlflowSide(ds, data_dir / f"mlflow-n{args.n}")
    log("mlflow: load (reused when present)")
    ml.load(reuse=True, log=log)
    log("mlflow search_traces with spans")
    theirs = mlflow_walks(ml, {k: questions[k].mlflow for k in PLAIN}, args.traces, args.repeats)
    print(f"search_traces, first {args.traces} matches in pages of 100, {args.n:,} traces "
          f"(median of {args.repeats}; tracesieve over stdio, MLflow in-process with spans)")
    print(f"{'filter':28} {'tracesieve s':>13} {'calls':>6} {'MLflow s':>9} {'calls':>6} {'ratio':>7}")
    for key in PLAIN:
        a, b = mine[key], theirs[key]
        assert a["traces"] == b["traces"] or min(a["traces"], b["traces"]) >= args.traces, (key, a, b)
        print(f"{questions[key].title:28} {a['median_s']:13.3f} {a['calls']:6} {b['median_s']:9.3f} {b['calls']:6} "
              f"{b['median_s'] / a['median_s']:6.1f}x")


if __name__ == "__main__":
    main()
