"""Drive readers into the store in batches, collecting per-file/per-trace errors.

Readers yield ``Trace`` objects and ``IngestError``s; a bad file, line or trace never stops the
batch, and because each batch is written in one transaction a trace is stored whole or not at all.

Two things keep ingestion fast without changing what is stored: the cyclic garbage collector is
paused while readers build millions of small objects (it would otherwise rescan them again and
again, and none of them form cycles), and each batch is written on a background thread while the
reader builds the next one (DuckDB releases the GIL while it inserts, so the two overlap).
Batches are still written one at a time and in order, each in its own transaction.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from types import TracebackType

from pydantic import BaseModel, Field

from tools.errors import IngestError
from tools.models import Trace
from tools.ports import TraceStore

MAX_ERRORS_LISTED = 50
#: Traces per transaction. Each batch pays a scan of the stored trace ids (and of the spans when it
#: replaces traces) and a commit, so small batches make large loads slower and the file more
#: fragmented: 100k demo traces loaded 1.4x faster (and 35 % smaller) at 10000 than at 2000.
BATCH_SIZE = 10_000


class IngestReport(BaseModel):
    traces: int = Field(0, description="Traces written (new or replaced).")
    spans: int = 0
    error_count: int = 0
    errors: list[str] = Field(default_factory=list, description=f"The first {MAX_ERRORS_LISTED} errors.")

    def add_error(self, error: IngestError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_LISTED:
            self.errors.append(str(error))

    def add(self, other: IngestReport) -> None:
        """Count ``other`` (a part of the same load, reported separately) into this report."""
        self.traces += other.traces
        self.spans += other.spans
        self.error_count += other.error_count
        self.errors.extend(other.errors[:MAX_ERRORS_LISTED - len(self.errors)])


def ingest(store: TraceStore, items: Iterable[Trace | IngestError], *, batch_size: int = BATCH_SIZE,
           report: IngestReport | None = None, on_batch: Callable[[IngestReport], None] | None = None) -> IngestReport:
    report = report or IngestReport()
    batch: list[Trace] = []
    with gc_paused(), _BatchWriter(store, report, on_batch) as writer:
        for item in items:
            if isinstance(item, IngestError):
                report.add_error(item)
                continue
            batch.append(item)
            if len(batch) >= batch_size:
                writer.submit(batch)
                batch = []
        writer.submit(batch)
    return report


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block (reference counting still frees memory).

    Parsed JSON and pydantic models are acyclic, but each allocation counts towards the next
    collection, and every full collection walks all live objects: with a file's worth of spans
    alive that costs more than parsing them.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _BatchWriter:
    """Writes batches in order on one background thread, at most one in flight.

    ``submit`` first waits for the previous batch (re-raising its error in the caller, and
    counting it in the report before ``on_batch`` sees it), so the report and callbacks advance
    exactly as if every write ran inline; only the reader's work on the next batch overlaps.
    """

    def __init__(self, store: TraceStore, report: IngestReport,
                 on_batch: Callable[[IngestReport], None] | None) -> None:
        self._store = store
        self._report = report
        self._on_batch = on_batch
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer")
        self._pending: tuple[Future[int], int] | None = None

    def __enter__(self) -> _BatchWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self._finish_pending()  # a failed earlier write outranks the reader's error, as inline
        finally:
            self._pool.shutdown(wait=True)

    def submit(self, batch: list[Trace]) -> None:
        self._finish_pending()
        if batch:
            spans = sum(len(t.spans) for t in batch)
            self._pending = (self._pool.submit(self._store.write_traces, batch), spans)

    def _finish_pending(self) -> None:
        if self._pending is None:
            return
        future, spans = self._pending
        self._pending = None
        self._report.traces += future.result()
        self._report.spans += spans
        if self._on_batch:
            self._on_batch(self._report)
