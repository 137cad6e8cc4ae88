"""Drive readers into the store in batches, collecting per-file/per-trace errors.

Readers yield ``Trace`` objects and ``IngestError``s; a bad file, line or trace never stops the
batch, and because each batch is written in one transaction a trace is stored whole or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pydantic import BaseModel, Field

from tools.errors import IngestError
from tools.models import Trace
from tools.ports import TraceStore

MAX_ERRORS_LISTED = 50


class IngestReport(BaseModel):
    traces: int = Field(0, description="Traces written (new or replaced).")
    spans: int = 0
    error_count: int = 0
    errors: list[str] = Field(default_factory=list, description=f"The first {MAX_ERRORS_LISTED} errors.")

    def add_error(self, error: IngestError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_LISTED:
            self.errors.append(str(error))


def ingest(store: TraceStore, items: Iterable[Trace | IngestError], *, batch_size: int = 2000,
           report: IngestReport | None = None, on_batch: Callable[[IngestReport], None] | None = None) -> IngestReport:
    report = report or IngestReport()
    batch: list[Trace] = []

    def flush() -> None:
        if batch:
            report.traces += store.write_traces(batch)
            report.spans += sum(len(t.spans) for t in batch)
            batch.clear()
            if on_batch:
                on_batch(report)

    for item in items:
        if isinstance(item, IngestError):
            report.add_error(item)
            continue
        batch.append(item)
        if len(batch) >= batch_size:
            flush()
    flush()
    return report
