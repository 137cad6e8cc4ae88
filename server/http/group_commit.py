"""Group commit: many concurrent OTLP requests, one store transaction each round.

A ``BatchSpanProcessor`` per service sends a request every few seconds, and a fleet sends many at
once. A transaction per request would spend most of its time opening, committing and checking the
file; instead every request waiting when the writer comes round is written in one transaction, and
each request is answered once that transaction has committed (so a 200 always means durable: the
receiver never answers from memory). A failed commit fails every request in it, and they are
retried by their exporters; spans are upserted, so a retry stores nothing twice.

Over ClickHouse the same round is one ``write_traces``: one insert per table instead of one per
request, which keeps the number of parts (and background merges) down under many small requests.

Back-pressure: when more than ``max_pending_spans`` are waiting, new requests are refused at once
(the receiver answers 503 with ``Retry-After``), so a burst cannot grow memory without bound.

The writer lets go of the store file at least every ``release_every_s`` between rounds: other
processes on the same store (``tracesieve serve`` over stdio, say) reach it in those gaps instead of
timing out. Not after every round: letting go checkpoints the file, which costs more than a round.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio

from tools.models import Trace
from tools.ports import TraceStore, WriteOutcome

log = logging.getLogger("tracesieve.otlp")

__all__ = ["Backpressure", "GroupCommitter"]


class Backpressure(Exception):
    """Too many spans are waiting to be written; the sender should retry after a pause."""


@dataclass
class _Waiting:
    traces: Sequence[Trace]
    spans: int
    done: asyncio.Future[WriteOutcome]


@dataclass
class CommitStats:
    """Totals since start, for the benchmark and tests."""

    commits: int = 0
    requests: int = 0
    spans_new: int = 0
    spans_updated: int = 0
    spans_unchanged: int = 0
    failures: int = 0
    warnings: list[str] = field(default_factory=list)


class GroupCommitter:
    """Writes queued requests in one transaction per round, on a worker thread."""

    def __init__(self, store: TraceStore, *, max_pending_spans: int = 200_000, release_every_s: float = 1.0) -> None:
        self.store = store
        self.max_pending_spans = max_pending_spans
        self.release_every_s = release_every_s
        self._released_at = time.monotonic()
        self.stats = CommitStats()
        self._queue: list[_Waiting] = []
        self._pending_spans = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = threading.Lock()  # one writer round at a time, even across event loops

    async def submit(self, traces: Sequence[Trace]) -> WriteOutcome:
        """Wait until ``traces`` are committed; raises Backpressure at once when the queue is full."""
        spans = sum(len(t.spans) for t in traces)
        if self._pending_spans and self._pending_spans + spans > self.max_pending_spans:
            raise Backpressure(f"{self._pending_spans} spans are waiting to be written")
        if spans > self.max_pending_spans:
            raise Backpressure(f"the request holds {spans} spans, more than the {self.max_pending_spans} "
                               "the receiver queues; send smaller batches")
        self._ensure_running()
        waiting = _Waiting(traces, spans, asyncio.get_running_loop().create_future())
        self._queue.append(waiting)
        self._pending_spans += spans
        assert self._wake is not None
        self._wake.set()
        return await asyncio.shield(waiting.done)

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="otlp-group-commit")

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                group, self._queue = self._queue, []
                await self._commit(group)

    async def _commit(self, group: list[_Waiting]) -> None:
        traces = [t for waiting in group for t in waiting.traces]
        try:
            outcome = await anyio.to_thread.run_sync(self._write, traces)
        except Exception as error:  # noqa: BLE001 - every waiting request learns why, and retries
            log.warning("OTLP group commit of %d requests failed: %s", len(group), error)
            self.stats.failures += 1
            for waiting in group:
                if not waiting.done.done():
                    waiting.done.set_exception(error)
        else:
            self.stats.commits += 1
            self.stats.requests += len(group)
            self.stats.spans_new += outcome.spans_new
            self.stats.spans_updated += outcome.spans_updated
            self.stats.spans_unchanged += outcome.spans_unchanged
            self.stats.warnings = (self.stats.warnings + outcome.warnings)[-50:]
            for waiting in group:
                if not waiting.done.done():
                    waiting.done.set_result(outcome)
        finally:
            self._pending_spans -= sum(waiting.spans for waiting in group)

    def _write(self, traces: list[Trace]) -> WriteOutcome:
        with self._lock:
            try:
                return self.store.write_traces(traces)
            finally:
                if time.monotonic() - self._released_at >= self.release_every_s and hasattr(self.store, "release"):
                    self.store.release()
                    self._released_at = time.monotonic()

    async def close(self) -> None:
        """Finish what is queued, then stop the writer."""
        while self._queue or self._pending_spans:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
