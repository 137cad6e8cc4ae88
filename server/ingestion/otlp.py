"""OTLP traces: JSON documents, JSON lines, protobuf, and bare span attribute maps.

Protobuf goes through ``MessageToDict`` so it meets exactly the same dict walker as OTLP/JSON;
the walker is lenient about the quirks real exporters have (TRACE_FORMATS.md): upper-case or
base64 ids, 64-bit ints as strings, enum names instead of numbers. Spans are grouped into traces
by trace id across the whole file, since the Collector's file exporter splits one trace over
several lines.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from server.ingestion.assemble import (TraceProblem, build_trace, make_span, normalise_id, root_span, span_status,
                                      time_ns, trace_or_error)
from server.ingestion.attributes import map_attributes
from server.ingestion.otlp_values import decode_key_values
from server.ingestion.detect import Document, is_attribute_map
from tools.errors import IngestError
from tools.models import Span, Trace

__all__ = ["SPAN_KINDS", "read_otlp_documents", "read_otlp_protobuf", "split_protobuf_messages"]

SPAN_KINDS = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
_ENVIRONMENT_KEYS = ("deployment.environment.name", "deployment.environment")


@dataclass
class _Group:
    """The raw spans of one trace id, each with the resource and scope it was exported under."""

    source_id: str
    spans: list[tuple[dict, dict, dict]] = field(default_factory=list)


def read_otlp_documents(docs: Iterable[Document | IngestError], path: Path) -> Iterator[Trace | IngestError]:
    """Read OTLP envelopes (or bare attribute maps) from parsed documents of one file."""
    source = str(path)
    groups: dict[str, _Group] = {}
    for doc in docs:
        if isinstance(doc, IngestError):
            yield doc
            continue
        for item in doc.value if isinstance(doc.value, list) else [doc.value]:
            if is_attribute_map(item):
                yield trace_or_error(source, doc.location, lambda item=item: _attribute_map_trace(item, path),
                                     fmt="OTLP")
            elif isinstance(item, dict) and ("resourceSpans" in item or "resource_spans" in item):
                try:
                    found = _spans_by_trace(item)  # all or nothing: a broken envelope adds no spans
                except (TypeError, AttributeError, ValueError) as exc:
                    yield IngestError(f"malformed OTLP envelope ({exc}); it must be an ExportTraceServiceRequest "
                                      "with resourceSpans[].scopeSpans[].spans[].",
                                      source=source, location=doc.location)
                    continue
                for trace_id, (source_id, spans) in found.items():
                    groups.setdefault(trace_id, _Group(source_id=source_id)).spans.extend(spans)
            else:
                yield IngestError("not an OTLP trace export (no 'resourceSpans'); pass the right format or "
                                  "re-export with the OTLP JSON exporter.", source=source, location=doc.location)
    for trace_id, group in groups.items():
        location = f"trace {group.source_id}" if group.source_id else "spans without a traceId"
        yield trace_or_error(source, location, lambda t=trace_id, g=group: _trace(t, g), fmt="OTLP")


def read_otlp_protobuf(data: bytes, path: Path) -> Iterator[Trace | IngestError]:
    """Read a binary OTLP file: one ExportTraceServiceRequest, or the Collector's length-delimited stream."""
    try:
        messages = split_protobuf_messages(data)
    except DecodeError:
        yield IngestError("not an OTLP protobuf ExportTraceServiceRequest (could not decode it); export with "
                          "the OTLP exporter, or pass a .json file for OTLP/JSON.", source=str(path))
        return
    docs = (Document(MessageToDict(message), location=f"message {number}" if len(messages) > 1 else "")
            for number, message in enumerate(messages, start=1))
    yield from read_otlp_documents(docs, path)


def split_protobuf_messages(data: bytes) -> list[ExportTraceServiceRequest]:
    """Parse one message, or a stream of (big-endian uint32 length, message) frames."""
    framed = _frames(data)
    if framed is not None:
        return framed
    message = ExportTraceServiceRequest()
    message.ParseFromString(data)
    if not message.resource_spans and data:
        raise DecodeError("no resource_spans")
    return [message]


def _frames(data: bytes) -> list[ExportTraceServiceRequest] | None:
    # A bare message starts with field 1 (0x0a); a frame starts with a length, usually 0x00.
    if not data or data[:1] == b"\x0a":
        return None
    messages, offset = [], 0
    while offset < len(data):
        if offset + 4 > len(data):
            return None
        (size,) = struct.unpack(">I", data[offset:offset + 4])
        chunk = data[offset + 4:offset + 4 + size]
        if len(chunk) != size:
            return None
        message = ExportTraceServiceRequest()
        try:
            message.ParseFromString(chunk)
        except DecodeError:
            return None
        messages.append(message)
        offset += 4 + size
    return messages


def _spans_by_trace(request: dict) -> dict[str, tuple[str, list[tuple[dict, dict, dict]]]]:
    """Normalised trace id -> (id as written, [(raw span, resource attributes, scope)])."""
    found: dict[str, tuple[str, list[tuple[dict, dict, dict]]]] = {}
    for resource_spans in request.get("resourceSpans", request.get("resource_spans")) or []:
        resource = decode_key_values((resource_spans.get("resource") or {}).get("attributes"))
        for scope_spans in resource_spans.get("scopeSpans", resource_spans.get("scope_spans")) or []:
            scope = scope_spans.get("scope") or {}
            for raw in scope_spans.get("spans") or []:
                raw_id = raw.get("traceId", raw.get("trace_id"))
                trace_id = normalise_id(raw_id, nbytes=16) or ""
                entry = found.get(trace_id)
                if entry is None:
                    entry = found[trace_id] = (str(raw_id or ""), [])
                entry[1].append((raw, resource, scope))
    return found


def _trace(trace_id: str, group: _Group) -> Trace:
    if not trace_id:
        raise TraceProblem(f"{len(group.spans)} span(s) have no traceId; every OTLP span needs one")
    spans, resources = [], {}
    for raw, resource, scope in group.spans:
        span = _envelope_span(raw, scope)
        spans.append(span)
        resources[span.span_id] = resource
    root = root_span(spans)
    resource = resources.get(root.span_id, {}) if root else next(iter(resources.values()), {})
    environment = next((str(resource[key]) for key in _ENVIRONMENT_KEYS if resource.get(key)), None)
    return build_trace(trace_id, spans, source="otlp",
                       source_id=group.source_id if group.source_id != trace_id else None,
                       environment=environment, metadata={"resource": resource} if resource else {})


def _envelope_span(raw: dict, scope: dict) -> Span:
    name = str(raw.get("name") or "")
    span_id = normalise_id(raw.get("spanId", raw.get("span_id")))
    if not span_id:
        raise TraceProblem(f"span '{name}' has no spanId; every OTLP span needs one")
    start = time_ns(raw.get("startTimeUnixNano", raw.get("start_time_unix_nano")))
    if start is None:
        raise TraceProblem(f"span '{name}' ({span_id}) has no startTimeUnixNano; every OTLP span needs one")
    end = time_ns(raw.get("endTimeUnixNano", raw.get("end_time_unix_nano")))
    attributes = decode_key_values(raw.get("attributes"))
    # unrolled (once per span): the kind and scope, unless the span's own attributes say otherwise
    if (kind := _span_kind(raw.get("kind"))) and "otel.span.kind" not in attributes:
        attributes["otel.span.kind"] = kind
    if (scope_name := scope.get("name")) and "otel.scope.name" not in attributes:
        attributes["otel.scope.name"] = scope_name
    if (scope_version := scope.get("version")) and "otel.scope.version" not in attributes:
        attributes["otel.scope.version"] = scope_version
    status = raw.get("status") or {}
    raw_events = raw.get("events")
    events = [{"name": event.get("name", ""), "time_unix_nano": time_ns(event.get("timeUnixNano")),
               "attributes": decode_key_values(event.get("attributes"))} for event in raw_events] if raw_events else []
    return make_span(span_id=span_id, parent_span_id=normalise_id(raw.get("parentSpanId", raw.get("parent_span_id"))),
                     name=name, start=start, end=end if end is not None else start,
                     status=span_status(status.get("code")), status_message=status.get("message") or None,
                     attributes=attributes, events=events)


def _span_kind(value: Any) -> str | None:
    if isinstance(value, int) and 0 <= value < len(SPAN_KINDS):
        return SPAN_KINDS[value]
    if isinstance(value, str) and value:
        text = value.upper().removeprefix("SPAN_KIND_")
        return SPAN_KINDS[int(text)] if text.isdigit() and int(text) < len(SPAN_KINDS) else text
    return None


def _attribute_map_trace(attributes: dict, path: Path) -> Trace:
    """One span described only by its attributes: ids from a content hash, so re-ingesting the
    same file yields the same trace; time from the file's mtime, the only clock it has."""
    digest = hashlib.sha256(json.dumps(attributes, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    mtime = path.stat().st_mtime_ns
    fields = map_attributes(attributes)
    operation = attributes.get("gen_ai.operation.name") or str(attributes.get("openinference.span.kind") or "").lower()
    name = " ".join(str(part) for part in (operation, fields.tool_name or fields.model) if part) or path.stem
    span = make_span(span_id=digest[32:48], parent_span_id=None, name=name, start=mtime, end=mtime,
                     status="UNSET", status_message=None, attributes=dict(attributes), events=[])
    return build_trace(digest[:32], [span], source="otlp")
