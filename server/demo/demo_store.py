"""The demo's store, whatever its engine, and the store work the demo does outside the MCP server.

The walkthrough talks to ``tracesieve serve`` over stdio, but a few steps work on the store
directly: writing the demo traces, reading the queued traces' seeded ground truth, streaming in
the live week. They go through ``build_backend`` and the ``TraceStore`` Protocol, so they work on
DuckDB and ClickHouse alike. A DuckDB file is shared between processes, so that work runs here,
in this process. A chdb folder serves one process at a time (and chdb cannot let go of it once
opened), so for chdb each piece runs in a fresh child process while the server is stopped
(``Session.outside``), and this process never opens the folder itself.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from server.demo.generate import generate_demo_traces, ground_truth
from server.exchange.folder import exchange_dir
from server.ingestion.pipeline import ingest
from server.storage.factory import StoreUrl, build_backend
from server.storage.urls import DEFAULT_DATABASE
from tools.errors import InvalidInputError

T = TypeVar("T")
LIVE_PER_DAY = 1200
LIVE_DAYS = 7


@dataclass(frozen=True)
class DemoStore:
    """The store ``tracesieve demo`` builds: a DuckDB file or a chdb folder (a throwaway store on this machine)."""

    url: StoreUrl

    def __post_init__(self) -> None:
        if self.url.engine not in ("duckdb", "chdb") or self.url.path is None:
            raise InvalidInputError(
                f"tracesieve demo builds a throwaway store on this machine, so it will not write demo traces into "
                f"{self.url.display()}. Use --db PATH (DuckDB) or --store chdb:///FOLDER.")

    @property
    def path(self) -> Path:
        assert self.url.path is not None
        return self.url.path

    @property
    def exclusive(self) -> bool:
        """True when one process at a time may use the store (chdb): the server must stop for others."""
        return self.url.engine == "chdb"

    def cli_args(self) -> list[str]:
        """How a ``tracesieve`` command names this store (``--db`` for DuckDB, as the README shows)."""
        return ["--db", str(self.path)] if self.url.engine == "duckdb" else ["--store", self.url.display()]

    def cli_text(self) -> str:
        return " ".join(self.cli_args())

    def exports(self) -> Path:
        """The folder the server reads imported files from (``import_labels``) and writes exports to: as
        the dataset stores' ``exports_dir``, a named database in a shared chdb folder has one of its own."""
        folder = exchange_dir(self.path)
        return folder if self.url.engine == "duckdb" or self.url.database == DEFAULT_DATABASE else folder / self.url.database

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(url, *args)`` here (DuckDB) or in a fresh child process (chdb: see the module docstring)."""
        if not self.exclusive:
            return fn(self.url, *args)
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            return pool.submit(fn, self.url, *args).result()


def build(url: StoreUrl, n_traces: int, seed: int, now_ms: int) -> str:
    """Write the demo traces (replacing earlier demo traces with the same ids); returns the line to print."""
    backend = build_backend(url)
    started = time.perf_counter()
    traces = generate_demo_traces(n_traces, seed=seed, now_ms=now_ms)
    report = ingest(backend.traces, traces)
    backend.traces.release()  # type: ignore[attr-defined]
    where = url.path if url.engine == "duckdb" else url.display()
    return (f"Built demo store {where}: {report.traces} traces, {report.spans_new} spans "
            f"in {time.perf_counter() - started:.1f}s (a support agent over 3 weeks, production + staging).")


def truth_of(url: StoreUrl, trace_ids: list[str]) -> dict[str, dict[str, str]]:
    """The seeded ground truth of ``trace_ids`` (from each stored trace's metadata)."""
    backend = build_backend(url)
    traces = {tid: backend.traces.load_trace(tid) for tid in trace_ids}
    backend.traces.release()  # type: ignore[attr-defined]
    return {tid: ground_truth(t) for tid, t in traces.items() if t is not None}


def stream_live(url: StoreUrl, now_ms: int) -> tuple[int, int]:
    """Days of traffic at production volume, v13 in production for the last 24 h (tagged stream=live).
    Returns (traces written, days)."""
    backend = build_backend(url)
    demo_size = int(backend.traces.stats()["trace_count"])
    days = LIVE_DAYS if demo_size >= 3000 else 2          # a small demo (the tests') streams less
    live = [t.model_copy(update={"trace_id": "live-" + t.trace_id, "tags": {**t.tags, "stream": "live"}})
            for t in generate_demo_traces(days * LIVE_PER_DAY, seed=19, now_ms=now_ms, days=days)]
    report = ingest(backend.traces, live)
    backend.traces.release()  # type: ignore[attr-defined]
    return report.traces, days
