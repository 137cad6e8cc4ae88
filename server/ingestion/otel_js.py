"""OpenTelemetry JS span dumps: ``ReadableSpan`` objects written with ``JSON.stringify``.

Mapping (one JSON object per span; see ``span_dump`` for how files hold them):

=================================================  =========================================
``spanContext.traceId`` / ``spanId``               ids (``_spanContext`` on SDK ``Span``
                                                   objects; top-level ``traceId`` / ``id``
                                                   from the JS ``ConsoleSpanExporter``)
``parentSpanContext.spanId`` or ``parentSpanId``   parent span id (SDK 2.x / 1.x), ``parentId``
``startTime`` / ``endTime`` ``[seconds, nanos]``   hrtime pairs; or epoch numbers of any unit;
                                                   ``timestamp`` + ``duration`` (µs, console)
``kind`` 0-4                                        ``otel.span.kind`` (INTERNAL … CONSUMER)
``status.code`` 0/1/2, ``status.message``          span status and message
``attributes``                                     span attributes, mapped like OTLP's
``events[].{name,time,attributes}``                span events
``resource.attributes``                            the trace's resource (environment)
=================================================  =========================================
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator

from server.ingestion.assemble import make_span, span_status
from server.ingestion.detect import Document
from server.ingestion.span_dump import DumpSpan, epoch_ns, read_span_dump, require, span_id
from tools.errors import IngestError
from tools.models import Trace

__all__ = ["read_otel_js_documents", "span_from_otel_js"]

SHAPE = "OpenTelemetry JS ReadableSpan dump"
#: JS ``SpanKind`` enum order (it has no UNSPECIFIED, unlike OTLP's).
JS_SPAN_KINDS = ("INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")


def read_otel_js_documents(docs: Iterable[Document | IngestError], path: Path) -> Iterator[Trace | IngestError]:
    """Read JS ReadableSpan dumps: a JSON array, ``{"spans": [...]}``, JSON lines or concatenated objects."""
    yield from read_span_dump(docs, path, read_span=span_from_otel_js, source="otel-js",
                              fmt="OpenTelemetry JS", shape=SHAPE)


def span_from_otel_js(raw: dict) -> DumpSpan:
    """One ReadableSpan object -> DumpSpan."""
    name = str(raw.get("name") or "")
    context = _dict(raw.get("spanContext")) or _dict(raw.get("_spanContext"))
    trace_id = require(span_id(context.get("traceId", raw.get("traceId")), nbytes=16), "spanContext.traceId", name)
    own_id = require(span_id(context.get("spanId", raw.get("id"))), "spanContext.spanId", name)
    parent = (_dict(raw.get("parentSpanContext")).get("spanId") or raw.get("parentSpanId") or raw.get("parentId"))
    start = epoch_ns(raw.get("startTime"))
    if start is None and raw.get("timestamp") is not None:  # ConsoleSpanExporter: µs since the epoch
        start = _micros(raw["timestamp"])
    start = require(start, "startTime", name)
    end = epoch_ns(raw.get("endTime"))
    if end is None and raw.get("duration") is not None:
        duration = raw["duration"]
        end = start + (epoch_ns(duration) if isinstance(duration, list) else (_micros(duration) or 0))
    attributes = dict(raw.get("attributes") or {})
    kind = raw.get("kind")
    if isinstance(kind, int) and 0 <= kind < len(JS_SPAN_KINDS) and "otel.span.kind" not in attributes:
        attributes["otel.span.kind"] = JS_SPAN_KINDS[kind]
    status = _dict(raw.get("status"))
    events = [{"name": event.get("name", ""), "time_unix_nano": epoch_ns(event.get("time")),
               "attributes": dict(event.get("attributes") or {})}
              for event in raw.get("events") or [] if isinstance(event, dict)]
    resource = _dict(raw.get("resource"))
    span = make_span(span_id=own_id, parent_span_id=span_id(parent), name=name, start=start,
                     end=end if end is not None else start, status=span_status(status.get("code")),
                     status_message=status.get("message") or None, attributes=attributes, events=events)
    return DumpSpan(trace_id, span, dict(resource.get("attributes") or resource.get("_rawAttributes") or {}))


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _micros(value: Any) -> int | None:
    try:
        return int(float(value) * 1_000)
    except (TypeError, ValueError):
        return None
