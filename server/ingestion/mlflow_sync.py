"""Following an MLflow tracking server: ``tracesieve sync --from-mlflow URI [--follow] [--push]``.

Each round reads the traces that started after the source's watermark *minus an overlap window*
(late traces, late spans, tags changed and assessments added since are in that window), through
the same reader and span upsert as ``ingest --from-mlflow``: reading a trace again stores nothing
twice, new spans are added, tags are upserted, HUMAN assessments become labels and LLM_JUDGE/CODE
ones scores (each once). The watermark only moves after the round's writes have committed, so a
round that fails is simply read again next time. An unreachable server or a missing experiment
fails before anything is written.

``--push`` writes the curation done here back onto the MLflow traces it came from: tags set or
removed (``set_trace_tag`` / ``delete_trace_tag``) and labels (``log_feedback`` as a HUMAN
assessment with the reviewer as its source), so an MLflow user sees them in the MLflow UI. What
was pushed is remembered (``pushed_at_ms``), so nothing is pushed twice.

Changes to traces older than the overlap window are not seen by an incremental round; run with a
larger ``--overlap`` (or ``ingest --from-mlflow``) to re-read further back.

Any engine: the traces go through the store's ``write_traces``; the watermarks and the curation to
push come from a ``SyncStatePort`` (DuckDB's ``sync_state`` table in its file, or, over ClickHouse,
the control plane's, see ``server.storage.factory.open_sync_state``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from pydantic import BaseModel, Field

from server.ingestion.mlflow_live import read_mlflow_tracking
from server.ingestion.pipeline import IngestReport, ingest
from tools import clock
from tools.errors import IngestError, ProviderError
from tools.models import Trace
from tools.ports import TraceStore

__all__ = ["DEFAULT_OVERLAP_MS", "PushReport", "SyncReport", "push_to_mlflow", "source_key", "sync_from_mlflow"]

#: How far before the watermark each round reads again (MLflow's async logging and long traces).
DEFAULT_OVERLAP_MS = 60 * 60 * 1000


class SyncStatePort(Protocol):
    """The watermarks of one followed source and the curation to push back to it."""

    source: str

    def get(self) -> tuple[int | None, int | None]: ...

    def set(self, *, now_ms: int, watermark_ms: int | None = None, pushed_at_ms: int | None = None) -> None: ...

    def curation_since(self, since_ms: int, source: str) -> dict[str, list[dict[str, Any]]]: ...


class SyncReport(BaseModel):
    source: str
    read_since_ms: int | None = Field(description="Start-time lower bound of this round's read (null: everything).")
    watermark_ms: int | None = Field(description="Newest trace start time seen from this source so far.")
    ingest: IngestReport


class PushReport(BaseModel):
    tags_set: int = 0
    tags_removed: int = 0
    labels_logged: int = 0
    errors: list[str] = Field(default_factory=list)


def source_key(uri: str, experiment: str | None) -> str:
    return f"mlflow:{uri}#{experiment or '*'}"


def sync_from_mlflow(store: TraceStore, state: SyncStatePort, uri: str, experiment: str | None = None, *,
                     overlap_ms: int = DEFAULT_OVERLAP_MS,
                     on_batch: Callable[[IngestReport], None] | None = None) -> SyncReport:
    """One incremental round (see the module docstring); ``state`` is ``source_key(uri, experiment)``'s."""
    watermark, _ = state.get()
    since = None if watermark is None else max(0, watermark - overlap_ms)
    items = read_mlflow_tracking(uri, experiment, since_ms=since)  # raises at once: nothing written
    newest: list[int] = []

    def watched() -> Iterator[Trace | IngestError]:
        for item in items:
            if isinstance(item, Trace):
                newest.append(item.timestamp_ms)
            yield item

    report = ingest(store, watched(), on_batch=on_batch)
    state.set(now_ms=clock.now_ms(), watermark_ms=max(newest, default=watermark))
    return SyncReport(source=state.source, read_since_ms=since, watermark_ms=state.get()[0], ingest=report)


def push_to_mlflow(state: SyncStatePort, uri: str) -> PushReport:
    """Write tags and labels set here since the last push back to their MLflow traces."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import AssessmentSource
    from mlflow.exceptions import MlflowException

    _, pushed_at = state.get()
    todo = state.curation_since(pushed_at or 0, "mlflow")
    client = MlflowClient(tracking_uri=uri)
    mlflow.set_tracking_uri(uri)
    report = PushReport()
    newest = pushed_at or 0
    failed: list[int] = []  # the mark never passes an item that failed, so it is tried again
    for tag in todo["tags"]:
        try:
            if tag["op"] == "delete":
                client.delete_trace_tag(tag["trace_id"], tag["key"])
                report.tags_removed += 1
            else:
                client.set_trace_tag(tag["trace_id"], tag["key"], tag["value"])
                report.tags_set += 1
        except MlflowException as exc:
            report.errors.append(f"tag '{tag['key']}' on trace {tag['trace_id']}: {exc.message}")
            failed.append(tag["at_ms"])
            continue
        newest = max(newest, tag["at_ms"])
    for label in todo["labels"]:
        try:
            mlflow.log_feedback(trace_id=label["trace_id"], name=label["criterion"], value=_feedback_value(label),
                                rationale=label["rationale"],
                                source=AssessmentSource(source_type="HUMAN", source_id=label["reviewer"] or "tracesieve"))
        except MlflowException as exc:
            report.errors.append(f"label '{label['criterion']}' on trace {label['trace_id']}: {exc.message}")
            failed.append(label["created_at_ms"])
            continue
        report.labels_logged += 1
        newest = max(newest, label["created_at_ms"])
    if report.errors and not (report.tags_set or report.tags_removed or report.labels_logged):
        raise ProviderError(f"Nothing could be pushed to MLflow at '{uri}': {report.errors[0]}", retryable=True)
    if failed:
        newest = min(newest, min(failed) - 1)
    state.set(now_ms=clock.now_ms(), pushed_at_ms=newest)
    return report


def _feedback_value(label: dict[str, Any]) -> Any:
    """pass/fail as booleans (MLflow's own convention for a judged criterion), numbers as numbers."""
    if label["numeric_value"] is not None:
        return label["numeric_value"]
    return {"pass": True, "fail": False}.get(label["value"], label["value"])
