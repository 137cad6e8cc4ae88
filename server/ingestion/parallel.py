"""Read many trace files at once in worker processes; write their batches in order, here.

Reading is CPU-bound Python (JSON parsing, building and mapping every span), so one process
uses one core however many the machine has. Each file is read by one worker, because a file is
the unit that splits cleanly: its spans are assembled into traces across all of its lines. The
worker hands back the batch's Arrow tables, which cross a process boundary as a few buffers
(the ``Trace`` objects would have to be pickled field by field, which cost more than reading).

This process writes in file order, every copy of a trace id kept for the writer to merge span
by span, exactly as the one-process ``ingest`` does, so the store and the report end the same (tested on the
ingest-equivalence corpus). One file, or a small load, is read in this process: starting
workers costs more than they save there.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import pyarrow as pa

from server.ingestion.pipeline import BATCH_SIZE, IngestReport, gc_paused, ingest
from server.ingestion import FORMATS, Format, read_path
from server.storage.duckdb.store import DuckDBTraceStore
from server.storage.duckdb.writer import last_rows, problems, to_arrow
from tools import clock
from tools.errors import IngestError, InvalidInputError
from tools.models import Trace

#: Below this much input, reading in this process is faster than starting workers (~0.5 s each).
MIN_PARALLEL_BYTES = 16 * 2**20
#: Files read ahead per worker: keeps every worker busy while a batch is written, and bounds the
#: tables held in memory.
READ_AHEAD_PER_WORKER = 2


def default_workers() -> int:
    """``TRACESIEVE_INGEST_WORKERS`` if set, else the cores this process may run on."""
    configured = os.environ.get("TRACESIEVE_INGEST_WORKERS", "").strip()
    if configured:
        try:
            return max(1, int(configured))
        except ValueError:
            raise InvalidInputError(f"TRACESIEVE_INGEST_WORKERS must be a whole number, got {configured!r}; "
                                    "unset it to use every core, or set 1 to read in one process.") from None
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass
class FileTables:
    """One file read by a worker: its traces as ``to_arrow`` chunks of at most a batch each, and
    what reading it reported (errors and span warnings; what was stored is counted as it is written)."""

    chunks: list[dict[str, pa.Table]]
    report: IngestReport


def read_file_tables(path: Path, fmt: Format, chunk_size: int, now_ms: int) -> FileTables:
    """Runs in a worker: read ``path`` and convert its traces (every copy) for the writer."""
    traces: list[Trace] = []
    report = IngestReport()
    with gc_paused():
        for item in read_path(path, fmt):
            if isinstance(item, IngestError):
                report.add_error(item)
                continue
            traces.append(item)
        report.add_warnings(problems(traces))
        chunks = [to_arrow(traces[i:i + chunk_size], now_ms=now_ms) for i in range(0, len(traces), chunk_size)]
    return FileTables(chunks=chunks, report=report)


@dataclass
class _Batch:
    """Chunks waiting to be written together; a trace id in several keeps every copy (the writer
    merges them span by span), a tag or label only its last value."""

    chunks: list[dict[str, pa.Table]] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)

    def add(self, chunk: dict[str, pa.Table]) -> None:
        self.chunks.append(chunk)
        self.ids |= set(chunk["batch_traces"].column("trace_id").to_pylist())

    def tables(self) -> dict[str, pa.Table]:
        tables = {name: pa.concat_tables([chunk[name] for chunk in self.chunks]) for name in self.chunks[0]}
        tables["batch_tags"] = last_rows(tables["batch_tags"], ["trace_id", "key"])
        tables["batch_labels"] = last_rows(tables["batch_labels"], ["label_id"])
        return tables


def ingest_files(store: DuckDBTraceStore, files: Sequence[Path], fmt: Format = "auto", *,
                 workers: int | None = None, min_parallel_bytes: int = MIN_PARALLEL_BYTES,
                 batch_size: int = BATCH_SIZE, report: IngestReport | None = None,
                 on_file: Callable[[Path], None] | None = None, replace_before_ms: int | None = None) -> IngestReport:
    """Ingest ``files`` (as listed by ``server.ingestion.list_files``), reading them on ``workers``
    processes (default: ``default_workers()``) when there are several files and at least
    ``min_parallel_bytes`` of them; ``on_file`` is called as each file has been read."""
    if fmt not in FORMATS:
        raise InvalidInputError(f"Unknown trace format '{fmt}'. Use one of: {', '.join(FORMATS)}.")
    report = report or IngestReport()
    workers = min(default_workers() if workers is None else workers, len(files))
    if workers < 2 or sum(f.stat().st_size for f in files) < min_parallel_bytes:
        return ingest(store, _read_in_process(files, fmt, on_file), batch_size=batch_size, report=report,
                      replace_before_ms=replace_before_ms)
    with ProcessPoolExecutor(workers, mp_context=get_context(_start_method())) as pool:
        batch = _Batch()
        for path, read in _in_order(pool, files, fmt, batch_size, read_ahead=workers * READ_AHEAD_PER_WORKER):
            report.add(read.report)
            for chunk in read.chunks:
                batch.add(chunk)
                if len(batch.ids) >= batch_size:
                    _write(store, batch, report, replace_before_ms)
                    batch = _Batch()
            if on_file:
                on_file(path)
        _write(store, batch, report, replace_before_ms)
    return report


def _in_order(pool: ProcessPoolExecutor, files: Sequence[Path], fmt: Format, batch_size: int, *,
              read_ahead: int) -> Iterator[tuple[Path, FileTables]]:
    """Each file's result in file order, with up to ``read_ahead`` files being read meanwhile."""
    pending: deque[tuple[Path, Future[FileTables]]] = deque()
    upcoming = iter(files)
    try:
        while True:
            while len(pending) < read_ahead and (path := next(upcoming, None)) is not None:
                pending.append((path, pool.submit(read_file_tables, path, fmt, batch_size, clock.now_ms())))
            if not pending:
                return
            path, future = pending.popleft()
            yield path, future.result()
    finally:
        for _, future in pending:
            future.cancel()


def _write(store: DuckDBTraceStore, batch: _Batch, report: IngestReport, replace_before_ms: int | None) -> None:
    if batch.chunks:
        report.add_outcome(store.write_tables(batch.tables(), replace_before_ms=replace_before_ms))


def _read_in_process(files: Sequence[Path], fmt: Format,
                     on_file: Callable[[Path], None] | None) -> Iterator[Trace | IngestError]:
    for path in files:
        yield from read_path(path, fmt)
        if on_file:
            on_file(path)


def _start_method() -> str:
    """``forkserver`` where there is one: forking this process would copy DuckDB's threads' locks."""
    return "forkserver" if "forkserver" in get_all_start_methods() else "spawn"
