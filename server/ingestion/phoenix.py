"""Arize Phoenix span exports (its REST ``/v1/projects/{id}/spans`` and span JSON downloads).

Mapping (one JSON object per span; see ``span_dump`` for how files hold them):

=================================  ============================================================
``context.trace_id`` / ``span_id``  ids (hex, as Phoenix writes them)
``parent_id``                       parent span id
``span_kind``                       ``openinference.span.kind`` unless the attributes state one
``start_time`` / ``end_time``       ISO-8601
``status_code``, ``status_message``  span status and message
``attributes``                      flat dotted keys, or nested (``{"llm": {"model_name": …}}``),
                                    flattened to OpenInference's dotted, index-numbered keys
``events[].{name,timestamp,attributes}``  span events
=================================  ============================================================
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from server.ingestion.assemble import make_span, span_status
from server.ingestion.detect import Document
from server.ingestion.span_dump import DumpSpan, epoch_ns, flatten_attributes, read_span_dump, require, span_id
from tools.errors import IngestError
from tools.models import Trace

__all__ = ["read_phoenix_documents", "span_from_phoenix"]

SHAPE = "Phoenix span export"


def read_phoenix_documents(docs: Iterable[Document | IngestError], path: Path) -> Iterator[Trace | IngestError]:
    """Read Phoenix span exports: a JSON array, ``{"data": [...]}`` / ``{"spans": [...]}``, or JSON lines."""
    yield from read_span_dump(docs, path, read_span=span_from_phoenix, source="phoenix", fmt="Phoenix", shape=SHAPE)


def span_from_phoenix(raw: dict) -> DumpSpan:
    """One Phoenix span object -> DumpSpan."""
    name = str(raw.get("name") or "")
    context = raw.get("context") if isinstance(raw.get("context"), dict) else {}
    trace_id = require(span_id(context.get("trace_id"), nbytes=16), "context.trace_id", name)
    own_id = require(span_id(context.get("span_id") or raw.get("span_id")), "context.span_id", name)
    start = require(epoch_ns(raw.get("start_time")), "start_time", name)
    end = epoch_ns(raw.get("end_time"))
    attributes = flatten_attributes(raw.get("attributes") or {})
    if raw.get("span_kind") and "openinference.span.kind" not in attributes:
        attributes["openinference.span.kind"] = str(raw["span_kind"]).upper()
    events = [{"name": event.get("name", ""), "time_unix_nano": epoch_ns(event.get("timestamp")),
               "attributes": dict(event.get("attributes") or {})}
              for event in raw.get("events") or [] if isinstance(event, dict)]
    span = make_span(span_id=own_id, parent_span_id=span_id(raw.get("parent_id")), name=name, start=start,
                     end=end if end is not None else start, status=span_status(raw.get("status_code")),
                     status_message=raw.get("status_message") or None, attributes=attributes, events=events)
    return DumpSpan(trace_id, span)
