"""OpenTelemetry Python span dumps: ``ConsoleSpanExporter`` output and ``ReadableSpan.to_json()``.

Mapping (one JSON object per span; see ``span_dump`` for how files hold them):

=====================================  ===========================================
``context.trace_id`` / ``span_id``     ids: ``0x`` hex as the SDK writes, or integers
                                        (``json.dumps`` of ``span.context``), to hex
``parent_id``                          parent span id (``null`` for a root)
``kind`` ``"SpanKind.CLIENT"``          ``otel.span.kind`` attribute ``CLIENT``
``start_time`` / ``end_time``          ISO-8601 (the SDK's form) or epoch numbers
``status.status_code`` / ``description``  span status and message
``attributes``                         span attributes, mapped like OTLP's
``events[].{name,timestamp,attributes}``  span events
``resource.attributes``                the trace's resource (environment)
=====================================  ===========================================

The span type then comes from the attributes (GenAI, OpenInference, MLflow), as for OTLP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

from server.ingestion.assemble import make_span, span_status
from server.ingestion.detect import Document
from server.ingestion.span_dump import DumpSpan, epoch_ns, read_span_dump, require, span_id
from tools.errors import IngestError
from tools.models import Trace

__all__ = ["read_otel_python_documents", "span_from_otel_python"]

SHAPE = "OpenTelemetry Python span dump (ConsoleSpanExporter / ReadableSpan.to_json())"


def read_otel_python_documents(docs: Iterable[Document | IngestError], path: Path) -> Iterator[Trace | IngestError]:
    """Read OTel Python span dumps: concatenated pretty JSON, a JSON array, ``{"spans": [...]}`` or JSON lines."""
    yield from read_span_dump(docs, path, read_span=span_from_otel_python, source="otel-python",
                              fmt="OpenTelemetry Python", shape=SHAPE)


def span_from_otel_python(raw: dict) -> DumpSpan:
    """One ``ReadableSpan.to_json()`` object -> DumpSpan."""
    name = str(raw.get("name") or "")
    context = raw.get("context") if isinstance(raw.get("context"), dict) else {}
    trace_id = require(span_id(context.get("trace_id"), nbytes=16), "context.trace_id", name)
    own_id = require(span_id(context.get("span_id")), "context.span_id", name)
    start = require(epoch_ns(raw.get("start_time")), "start_time", name)
    end = epoch_ns(raw.get("end_time"))
    attributes = dict(raw.get("attributes") or {})
    kind = str(raw.get("kind") or "").removeprefix("SpanKind.").upper()
    if kind and "otel.span.kind" not in attributes:
        attributes["otel.span.kind"] = kind
    status = raw.get("status") if isinstance(raw.get("status"), dict) else {}
    events = [{"name": event.get("name", ""), "time_unix_nano": epoch_ns(event.get("timestamp")),
               "attributes": dict(event.get("attributes") or {})}
              for event in raw.get("events") or [] if isinstance(event, dict)]
    resource = raw.get("resource") if isinstance(raw.get("resource"), dict) else {}
    span = make_span(span_id=own_id, parent_span_id=span_id(raw.get("parent_id")), name=name, start=start,
                     end=end if end is not None else start, status=span_status(status.get("status_code")),
                     status_message=status.get("description") or None, attributes=attributes, events=events)
    return DumpSpan(trace_id, span, dict(resource.get("attributes") or {}))
