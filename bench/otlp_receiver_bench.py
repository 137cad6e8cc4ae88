"""Spans/s through ``POST /v1/traces`` with the real OTLP/HTTP exporter, next to MLflow's own endpoint.

Every figure comes from one run on this machine, so ratios compare like with like:

* ``tracesieve serve --http`` (receiver and MCP server in one process) receives spans from
  ``--senders`` exporter processes; each sends its pre-built traces (made by the real SDK,
  untimed) with ``OTLPSpanExporter.export`` in batches of 512 spans, as ``BatchSpanProcessor``
  does. Rate = spans acknowledged / wall time from first send to last 200. Acknowledgement
  latency p50/p99 is per export call. Then the store is counted: spans lost = sent - stored.
* search latency: ``search_traces`` over MCP (streamable HTTP, same server) while the senders
  run, against the same search on the idle server afterwards.
* MLflow (``--mlflow``): the same spans, senders and batch size against ``mlflow server``'s
  ``/v1/traces`` (sqlite backend) on loopback.

* ``--engines duckdb,chdb``: the same senders into ``serve --http --store chdb:///…`` as well (the
  receiver's group commit over the ClickHouse writer), one row per engine, same run.

Run: ``python -m bench.otlp_receiver_bench [--traces 2000] [--senders 2] [--mlflow] [--engines duckdb,chdb]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx

BATCH = 512


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, ok: set[int], proc: subprocess.Popen, seconds: float = 900) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code in ok:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


def _build(seed: int, traces: int, spans_per_trace: int) -> list[Any]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    for i in range(traces):
        with tracer.start_as_current_span("agent", attributes={"input.value": f'{{"q": "question {seed}-{i}"}}',
                                                               "output.value": '{"a": "an answer"}'}):
            for j in range(spans_per_trace - 1):
                with tracer.start_as_current_span("chat gpt-4o" if j % 2 else "execute_tool lookup", attributes={
                        "gen_ai.operation.name": "chat" if j % 2 else "execute_tool",
                        "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 100 + j,
                        "gen_ai.usage.output_tokens": 20, "gen_ai.tool.name": "lookup"}):
                    pass
    return list(memory.get_finished_spans())


def _send(args: tuple[str, dict[str, str], int, int, int, Any]) -> tuple[int, list[float], int]:
    """One exporter process: build its spans (untimed), wait for the start signal, send them all."""
    endpoint, headers, seed, traces, spans_per_trace, start, ready = args
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import SpanExportResult

    spans = _build(seed, traces, spans_per_trace)
    exporter = OTLPSpanExporter(endpoint=endpoint, headers=headers, timeout=60)
    ready.put(seed)
    start.wait()
    latencies, failed, acked = [], 0, 0
    for i in range(0, len(spans), BATCH):
        chunk = spans[i:i + BATCH]
        t0 = time.perf_counter()
        result = exporter.export(chunk)
        latencies.append(time.perf_counter() - t0)
        if result == SpanExportResult.SUCCESS:
            acked += len(chunk)
        else:
            failed += len(chunk)
    return acked, latencies, failed


def _blast(endpoint: str, headers: dict[str, str], senders: int, traces: int, spans_per_trace: int,
           seed: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        start, ready = manager.Event(), manager.Queue()
        with ctx.Pool(senders) as pool:
            jobs = [(endpoint, headers, seed + k, traces // senders, spans_per_trace, start, ready)
                    for k in range(senders)]
            pending = pool.map_async(_send, jobs)
            for _ in range(senders):  # every sender has built its spans before the clock starts
                ready.get(timeout=1800)
            t0 = time.perf_counter()
            start.set()
            results = pending.get()
            seconds = time.perf_counter() - t0
    acked = sum(r[0] for r in results)
    latencies = sorted(x for r in results for x in r[1])
    return {"acked": acked, "failed": sum(r[2] for r in results), "seconds": seconds, "rate": acked / seconds,
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]}


def _search_latencies(url: str, stop: Any, out: list[float]) -> None:
    import anyio
    from mcp import Client

    async def run() -> None:
        async with Client(f"{url}/mcp") as client:
            while not stop.is_set():
                t0 = time.perf_counter()
                result = await client.call_tool("search_traces", {"filter": "attributes.status = 'OK'", "limit": 20})
                assert not result.is_error, result.content
                out.append(time.perf_counter() - t0)
                await anyio.sleep(0.05)

    anyio.run(run)


_CHDB_COUNT = """import sys
from server.storage.factory import build_backend, parse_store_url
print(build_backend(parse_store_url(sys.argv[1])).traces.stats()["span_count"])"""


def _stored_spans(engine: str, db: Path) -> int:
    """Spans in the store once the server has stopped (chdb: in a process of its own, one per folder)."""
    if engine == "chdb":
        out = subprocess.run([sys.executable, "-c", _CHDB_COUNT, f"chdb://{db}"], capture_output=True, text=True,
                             check=True)
        return int(out.stdout.strip().splitlines()[-1])
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM spans").fetchone()[0]
    finally:
        con.close()


def bench_tracesieve(workdir: Path, senders: int, traces: int, spans_per_trace: int,
                     engine: str = "duckdb") -> dict[str, Any]:
    import threading

    db, port = workdir / ("live.duckdb" if engine == "duckdb" else "live-chdb"), _free_port()
    store = ["--db", str(db)] if engine == "duckdb" else ["--store", f"chdb://{db}"]
    proc = subprocess.Popen([sys.executable, "-m", "server", "serve", "--http", *store, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{url}/v1/traces", {405}, proc)
        busy: list[float] = []
        stop = threading.Event()
        searcher = threading.Thread(target=_search_latencies, args=(url, stop, busy))
        searcher.start()
        result = _blast(f"{url}/v1/traces", {}, senders, traces, spans_per_trace, seed=1)
        stop.set()
        searcher.join()
        idle: list[float] = []
        stop = threading.Event()
        searcher = threading.Thread(target=_search_latencies, args=(url, stop, idle))
        searcher.start()
        time.sleep(max(3.0, min(10.0, result["seconds"])))
        stop.set()
        searcher.join()
    finally:
        proc.terminate()
        proc.wait(60)
    stored = _stored_spans(engine, db)
    result.update(stored=stored, lost=result["acked"] - stored, search_busy_ms=1000 * statistics.median(busy),
                  search_idle_ms=1000 * statistics.median(idle), searches=(len(busy), len(idle)))
    return result


def bench_mlflow(workdir: Path, senders: int, traces: int, spans_per_trace: int) -> dict[str, Any]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                             f"sqlite:///{workdir / 'mlflow.db'}", "--default-artifact-root", str(workdir / "art"),
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"})
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{url}/health", {200}, proc)
        from mlflow import MlflowClient

        experiment = MlflowClient(url).create_experiment("otlp-bench")
        return _blast(f"{url}/v1/traces", {"x-mlflow-experiment-id": experiment}, senders, traces,
                      spans_per_trace, seed=1)
    finally:
        proc.terminate()
        proc.wait(60)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=int, default=2000, help="traces in all (split over the senders)")
    parser.add_argument("--spans-per-trace", type=int, default=8)
    parser.add_argument("--senders", type=int, default=2, help="exporter processes")
    parser.add_argument("--mlflow", action="store_true", help="also measure mlflow server's /v1/traces")
    parser.add_argument("--engines", default="duckdb", help="comma-separated: duckdb, chdb (the first is the "
                                                            "one searched and compared with MLflow)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="otlp-bench-"))
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    runs = {engine: bench_tracesieve(workdir, args.senders, args.traces, args.spans_per_trace, engine)
            for engine in engines}
    ours = runs[engines[0]]
    print(f"tracesieve: {runs}", file=sys.stderr)
    theirs = bench_mlflow(workdir, args.senders, args.traces, args.spans_per_trace) if args.mlflow else None
    if theirs:
        print(f"mlflow: {theirs}", file=sys.stderr)
    spans = args.traces // args.senders * args.senders * args.spans_per_trace
    print(f"\n{spans:,} spans ({args.traces:,} traces x {args.spans_per_trace}) from {args.senders} exporter "
          f"processes, {BATCH} spans per request\n")
    print("| endpoint | spans/s | ack p50 ms | ack p99 ms | spans lost | x MLflow |")
    print("|---|---:|---:|---:|---:|---:|")
    for engine, run in runs.items():
        ratio = f"{run['rate'] / theirs['rate']:.1f}" if theirs else "n/a"
        print(f"| tracesieve `serve --http` ({engine}) | {run['rate']:,.0f} | {run['p50_ms']:.0f} | "
              f"{run['p99_ms']:.0f} | {run['lost'] + run['failed']} | {ratio} |")
    if theirs:
        print(f"| mlflow server `/v1/traces` | {theirs['rate']:,.0f} | {theirs['p50_ms']:.0f} | {theirs['p99_ms']:.0f} "
              f"| {theirs['failed']} (failed) | 1.0 |")
    print(f"\nsearch_traces over MCP on the same server ({engines[0]}): p50 {ours['search_busy_ms']:.0f} ms while ingesting vs "
          f"{ours['search_idle_ms']:.0f} ms idle ({ours['search_busy_ms'] / ours['search_idle_ms']:.1f}x; "
          f"{ours['searches'][0]} and {ours['searches'][1]} searches)")


if __name__ == "__main__":
    main()
