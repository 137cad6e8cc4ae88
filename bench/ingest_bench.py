"""How fast ``ingest`` loads OTLP/JSON lines, next to baselines measured in the same run.

The machine is shared and noisy, so absolute numbers mean little on their own: every row here is
measured in the same process, interleaved over ``--repeats`` rounds, and reported as the best
round together with its ratio to the JSON floor. Rows:

* ``json.loads floor``: only ``json.loads`` of every line (what any Python reader pays first);
* ``read_path only``: the OTLP reader building every ``Trace``, nothing written;
* ``ingest (inline writes)``: ``ingest`` with each batch written before the next is read, i.e.
  no overlap between reading and writing (the shape of the original ingest loop);
* ``ingest``: the shipped ``ingest`` (batches written on a background thread);
* ``ingest_files, N reading processes`` (only for data of several files): what ``tracesieve
  ingest`` runs on such a load, each file read and converted by a worker process;
* ``to_arrow only`` and ``DuckDB write floor``: the two steps after reading, timed apart on
  batches read beforehand (untimed): converting each 10k-trace batch to Arrow tables, then
  writing the converted batches into a fresh store and closing it. The JSON floor plus the write
  floor is what any reader costs before its own work, which bounds the rate on this machine.

Every row also reports the CPU seconds of this process (all its threads; DuckDB uses several),
except the worker row, whose reading happens in child processes.

Each ingest row loads into a fresh store file and includes closing it (DuckDB checkpoints on
close, so the data is really on disk). Run:
``python -m bench.ingest_bench [--data DIR] [--repeats N] [--workers N]``.
Data: ``python -m bench.run --quick`` generates ``/tmp/tracesieve-bench/n10000-s1000``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any
from unittest import mock

import pyarrow as pa

from server.ingestion import pipeline as ingest_module
from server.ingestion.pipeline import BATCH_SIZE, gc_paused, ingest
from server.ingestion import list_files, read_path
from server.ingestion.parallel import default_workers, ingest_files
from server.storage.duckdb import writer
from server.storage.duckdb.store import DuckDBTraceStore
from tools.models import Trace

DEFAULT_DATA = Path("/tmp/tracesieve-bench/n10000-s1000")


def _json_floor(data: Path) -> int:
    """Decode every line with the stdlib, the reader's first step; returns the lines decoded."""
    lines = 0
    with gc_paused():
        for file in list_files(data):
            for line in file.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    json.loads(line)
                    lines += 1
    return lines


def _read_only(data: Path) -> int:
    with gc_paused():
        return sum(len(item.spans) for item in read_path(data, "otlp") if not isinstance(item, Exception))


class _InlinePool:
    """Stands in for the writer thread pool: runs each write at once, in the caller's thread."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def submit(self, fn: Callable[..., Any], *args: object, **kwargs: object) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future

    def shutdown(self, wait: bool = True) -> None:
        pass


def _read_batches(data: Path) -> list[list[Trace]]:
    """Every trace of ``data`` in ``ingest``'s batches, read untimed for the floor rows."""
    with gc_paused():
        traces = [item for item in read_path(data, "otlp") if not isinstance(item, Exception)]
    return [traces[i:i + BATCH_SIZE] for i in range(0, len(traces), BATCH_SIZE)]


class _AfterReading:
    """The two steps after reading, timed apart on the same batches: ``convert`` times
    ``writer.to_arrow`` alone, ``write`` the converted tables into a fresh store, closing
    checkpoint included. The batches are read on first use (untimed) and reused every round."""

    def __init__(self, data: Path, workdir: Path) -> None:
        self.data, self.workdir = data, workdir
        self.batches: list[list[Trace]] | None = None
        self.tables: list[dict[str, pa.Table]] = []

    def convert(self) -> int:
        if self.batches is None:
            self.batches = _read_batches(self.data)
        with gc_paused():
            self.tables = [writer.to_arrow(batch, now_ms=0) for batch in self.batches]
        return sum(t["batch_spans"].num_rows for t in self.tables)

    def write(self) -> int:
        """Needs ``convert`` to have run (its time is not the write's)."""
        db = self.workdir / f"floor-{time.monotonic_ns()}.duckdb"
        store = DuckDBTraceStore(db, idle_release_s=60)
        store.schema_version()  # migrations are not part of the write
        try:
            for tables in self.tables:
                store.write_tables(tables)
            store.release()
        finally:
            for path in (db, db.with_suffix(".duckdb.wal")):
                path.unlink(missing_ok=True)
        return sum(t["batch_spans"].num_rows for t in self.tables)


def _ingest(data: Path, workdir: Path, *, inline: bool = False, workers: int = 0) -> int:
    db = workdir / f"bench-{time.monotonic_ns()}.duckdb"
    store = DuckDBTraceStore(db, idle_release_s=60)
    try:
        if inline:
            with mock.patch.object(ingest_module, "ThreadPoolExecutor", _InlinePool):
                report = ingest(store, read_path(data, "otlp"))
        elif workers:
            report = ingest_files(store, list_files(data), "otlp", workers=workers, min_parallel_bytes=0)
        else:
            report = ingest(store, read_path(data, "otlp"))
        store.release()  # the closing checkpoint is part of the load
    finally:
        for path in (db, db.with_suffix(".duckdb.wal")):
            path.unlink(missing_ok=True)
    if report.error_count:
        raise RuntimeError(f"ingest reported errors: {report.errors[:3]}")
    return report.spans_new


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a directory (or file) of OTLP/JSON lines")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the best round of each row is reported")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="reading processes for the ingest_files row (default: one per core)")
    args = parser.parse_args(argv)
    if not args.data.exists():
        sys.exit(f"No data at {args.data}; generate it with: python -m bench.run --quick")
    workdir = Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    rows: dict[str, Callable[[], int]] = {
        "json.loads floor (lines)": lambda: _json_floor(args.data),
        "read_path only": lambda: _read_only(args.data),
        "ingest (inline writes)": lambda: _ingest(args.data, workdir, inline=True),
        "ingest": lambda: _ingest(args.data, workdir),
    }
    after_reading = _AfterReading(args.data, workdir)
    if len(list_files(args.data)) > 1:
        rows[f"ingest_files, {args.workers} reading processes"] = lambda: _ingest(args.data, workdir,
                                                                                  workers=args.workers)
    rows["to_arrow only (batches read beforehand)"] = after_reading.convert
    rows["DuckDB write floor (converted batches)"] = after_reading.write
    best: dict[str, float] = {}
    cpu: dict[str, float] = {}
    counts: dict[str, int] = {}
    try:
        for round_number in range(1, args.repeats + 1):
            for name, run in rows.items():
                if name.startswith("DuckDB write") and not after_reading.tables:
                    after_reading.convert()  # the first round's conversion is not the write's
                start, start_cpu = time.perf_counter(), time.process_time()
                counts[name] = run()
                seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
                if seconds < best.get(name, float("inf")):
                    best[name], cpu[name] = seconds, cpu_seconds
                print(f"round {round_number}: {name}: {seconds:.2f} s ({cpu_seconds:.2f} s CPU)", file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    spans = counts["ingest"]
    floor = best["json.loads floor (lines)"]
    print(f"\n{args.data}: {spans:,} spans, best of {args.repeats}\n")
    print("| step | seconds | CPU seconds | spans/s | × json floor time |")
    print("|---|---:|---:|---:|---:|")
    for name in rows:
        print(f"| {name} | {best[name]:.2f} | {cpu[name]:.2f} | {spans / best[name]:,.0f} | {best[name] / floor:.2f} |")
    unavoidable = cpu["json.loads floor (lines)"] + cpu["DuckDB write floor (converted batches)"]
    cores = default_workers()
    # An upper bound: it assumes both floors spread perfectly over every core and no reading work.
    print(f"\nJSON floor + write floor: {unavoidable:.2f} CPU s, {unavoidable / spans * 1e6:.1f} µs per span, "
          f"so at most {spans * cores / unavoidable:,.0f} spans/s on {cores} core(s) even with no reading work.")


if __name__ == "__main__":
    main()
