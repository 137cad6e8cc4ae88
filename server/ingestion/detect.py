"""Tell which format a file holds, by content first, and split it into JSON documents.

Extensions lie (every format here is ``.json``), so ``auto`` looks at the first document's keys.
Reading documents lives here too because the sniff needs the first one anyway, and each reader
then consumes the same stream: a whole-file JSON value, or JSON lines with their line numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

from server.ingestion.json_text import TooDeepError, check_depth, parse, replace_lone_surrogates
from tools.errors import IngestError

__all__ = ["Document", "PROTOBUF_SUFFIXES", "SHAPES", "diagnose", "document_items", "is_attribute_map",
           "looks_like_protobuf", "read_documents", "sniff"]

Kind = Literal["otlp", "mlflow", "langfuse", "otel-python", "otel-js", "phoenix"]
PROTOBUF_SUFFIXES = frozenset({".pb", ".binpb", ".otlp"})
_ENVELOPE_KEYS = frozenset({"resourceSpans", "resource_spans", "info", "data", "trace", "observations"})


@dataclass(frozen=True)
class Document:
    """One parsed JSON value and where it came from ("" for a whole file, "line 3" for JSON lines)."""

    value: Any
    location: str = ""


def looks_like_protobuf(path: Path, head: bytes) -> bool:
    """Binary OTLP: a protobuf suffix, or content that cannot be JSON (first byte not '{' or '[')."""
    if path.suffix.lower() in PROTOBUF_SUFFIXES:
        return True
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return bool(stripped) and stripped[:1] not in (b"{", b"[")


def read_documents(path: Path, text: str) -> Iterator[Document | IngestError]:
    """Parse ``text`` as one JSON value, or else as JSON lines (one error per bad line).

    Lone surrogate escapes become U+FFFD first, once for the whole text (see ``json_text``), so
    no parsed string is unencodable. ``json.loads`` also refuses an integer literal of more than
    4300 digits with a plain ValueError; that is reported like any other bad JSON.
    """
    source = str(path)
    text = replace_lone_surrogates(text.lstrip("\ufeff"))
    if not text or text.isspace():  # ``not text.strip()`` without copying a whole file to test it
        yield IngestError("the file is empty; export at least one trace into it.", source=source)
        return
    try:
        whole = parse(text)
    except ValueError as error:  # JSONDecodeError, or an integer literal too long to convert
        lines = text.splitlines()
        if not _looks_like_json_lines([line for line in lines if line.strip()]):
            # a value too deep to parse is not several values one after another: say so, as is
            objects = None if isinstance(error, TooDeepError) else _concatenated(text, source)
            if objects is not None:  # ConsoleSpanExporter: pretty objects one after another
                yield from objects
                return
            where = f" (line {error.lineno}, column {error.colno})" if isinstance(error, json.JSONDecodeError) else ""
            yield IngestError(f"not valid JSON: {_json_problem(error)}{where}; "
                              "fix the file or re-export it as one JSON document or JSON lines.", source=source)
            return
    else:
        yield Document(whole)
        return
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield Document(parse(line), location=f"line {number}")
        except ValueError as exc:
            where = f" (column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
            yield IngestError(f"not valid JSON: {_json_problem(exc)}{where}; fix or remove this line.",
                              source=source, location=f"line {number}")


def _concatenated(text: str, source: str) -> list[Document | IngestError] | None:
    """Whole JSON values written one after another (``{…}{…}`` or pretty objects on many lines),
    or ``None`` unless the text starts with at least two complete values."""
    decoder = json.JSONDecoder()
    found: list[Document | IngestError] = []
    index, size = 0, len(text)
    while True:
        while index < size and text[index] in " \t\r\n":
            index += 1
        if index >= size:
            return found if len(found) > 1 else None
        try:
            try:
                value, index = decoder.raw_decode(text, index)
            except RecursionError:
                raise TooDeepError() from None
            check_depth(value)
        except ValueError as error:
            if len(found) < 2:
                return None
            line = text.count("\n", 0, index) + 1
            found.append(IngestError(f"not valid JSON after object {len(found)} ({_json_problem(error)}, line {line}); "
                                     "the objects before it were read, fix the file from there.",
                                     source=source, location=f"object {len(found) + 1}"))
            return found
        found.append(Document(value, location=f"object {len(found) + 1}"))


def _json_problem(error: ValueError) -> str:
    if isinstance(error, json.JSONDecodeError):
        return error.msg
    if isinstance(error, TooDeepError):
        return str(error)
    return "an integer literal is too long to read (over 4300 digits; no count, time or id is that long)"


def _looks_like_json_lines(lines: list[str]) -> bool:
    """JSON lines have a whole object on their first line, or (if that one is broken) on a later
    one; a pretty-printed document opens with a lone '{' or '[' and is reported as one error."""
    if len(lines) < 2:
        return False
    if _is_object_line(lines[0]):
        return True
    return lines[0].strip() not in ("{", "[") and any(_is_object_line(line) for line in lines[1:5])


def _is_object_line(line: str) -> bool:
    try:
        value = parse(line)
    except ValueError:
        return False
    return isinstance(value, dict) and bool(value)


def sniff(value: Any) -> Kind | None:
    """Name the format of one parsed document, or ``None`` if it is none of ours."""
    if isinstance(value, list):
        return next((kind for item in value[:5] if (kind := sniff(item))), None)
    if not isinstance(value, dict):
        return None
    if "resourceSpans" in value or "resource_spans" in value:
        return "otlp"
    if "observations" in value or (isinstance(value.get("trace"), dict) and "observations" in value["trace"]):
        return "langfuse"
    info = value.get("info")
    if isinstance(info, dict) and ({"trace_id", "request_id", "trace_location", "request_time"} & info.keys()):
        return "mlflow"
    if isinstance(value.get("trace"), dict) and {"id", "timestamp"} <= value["trace"].keys():
        return "langfuse"
    if is_attribute_map(value):
        return "otlp"
    return _span_dump_kind(value)


def _span_dump_kind(value: dict) -> Kind | None:
    """The per-span dump shapes: a span object, or ``{"spans"|"data": [span, …]}``."""
    held = next((value[key] for key in ("spans", "data") if isinstance(value.get(key), list)), None)
    if held is not None:
        return next((kind for item in held[:5] if isinstance(item, dict) and (kind := _span_dump_kind(item))), None)
    context = value.get("context")
    if isinstance(context, dict) and {"trace_id", "span_id"} <= context.keys():
        return "phoenix" if ("span_kind" in value or "status_code" in value) else "otel-python"
    js_context = value.get("spanContext", value.get("_spanContext"))
    if isinstance(js_context, dict) and {"traceId", "spanId"} <= js_context.keys():
        return "otel-js"
    if {"traceId", "id", "name"} <= value.keys() and ("timestamp" in value or "startTime" in value):
        return "otel-js"
    return None


#: Every shape ``auto`` accepts: (format name, what it is, the keys that identify it). ``diagnose``
#: names the one a document comes closest to and the keys it lacks.
SHAPES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("otlp", "OTLP JSON export", ("resourceSpans", "scopeSpans", "spans", "traceId", "spanId",
                                  "startTimeUnixNano")),
    ("mlflow", "MLflow Trace.to_json()", ("info", "data", "trace_id", "request_time", "spans")),
    ("langfuse", "Langfuse {trace, observations} export", ("trace", "observations", "id", "timestamp")),
    ("otel-python", "OpenTelemetry Python span dump (ConsoleSpanExporter / to_json)",
     ("name", "context", "trace_id", "span_id", "parent_id", "kind", "start_time", "end_time", "status")),
    ("otel-js", "OpenTelemetry JS ReadableSpan", ("name", "spanContext", "traceId", "spanId", "parentSpanContext",
                                                  "kind", "startTime", "endTime", "status")),
    ("phoenix", "Phoenix span export", ("name", "context", "trace_id", "span_id", "parent_id", "span_kind",
                                        "start_time", "end_time", "status_code")),
)


def diagnose(value: Any) -> str:
    """Why ``sniff`` said no: the closest shape, the keys of it the document lacks, the accepted shapes."""
    keys = _keys(value)
    accepted = "; ".join(f"{name} ({label})" for name, label, _ in SHAPES)
    scored = [(sum(key in keys for key in wanted) / len(wanted), name, label, wanted) for name, label, wanted in SHAPES]
    best = max(scored, key=lambda row: row[0])
    if best[0] == 0:
        closest = f"it matches none of them (top-level keys: {', '.join(sorted(_top(value))[:8]) or 'none'})"
    else:
        missing = [key for key in best[3] if key not in keys]
        closest = f"closest is {best[1]} ({best[2]}), but it has no {', '.join(missing)}"
    return (f"could not tell the trace format from the content: {closest}. Accepted shapes: {accepted}. "
            "Fix the file, or pass the format explicitly with --format.")


def _top(value: Any) -> set[str]:
    if isinstance(value, list):
        value = next((item for item in value if isinstance(item, dict)), {})
    return {str(key) for key in value} if isinstance(value, dict) else set()


def _keys(value: Any, depth: int = 0) -> set[str]:
    """Keys at the top and two levels down (of the first item of any list), enough to match a shape."""
    if isinstance(value, list):
        return _keys(next((item for item in value if isinstance(item, (dict, list))), {}), depth)
    if not isinstance(value, dict) or depth > 3:
        return set()
    found = {str(key) for key in value}
    for item in list(value.values())[:40]:
        if isinstance(item, (dict, list)):
            found |= _keys(item, depth + 1)
    return found


def is_attribute_map(value: Any) -> bool:
    """A bare span attribute map: ``{"gen_ai.operation.name": "chat", ...}`` with flat values.

    This is how OpenInference and GenAI test fixtures describe a single span; we read it as one
    OTel span so such files ingest without a hand-written envelope.
    """
    if not isinstance(value, dict) or not value or _ENVELOPE_KEYS & value.keys():
        return False
    flat = all(not isinstance(item, dict) and (not isinstance(item, list) or
                                               all(not isinstance(x, (dict, list)) for x in item))
               for item in value.values())
    return flat and any("." in str(key) for key in value)


def document_items(docs: Iterable[Document | IngestError]) -> Iterator[tuple[Any, str] | IngestError]:
    """Each item of each document with where it sits (a file may hold one object, a list, or JSON lines)."""
    for doc in docs:
        if isinstance(doc, IngestError):
            yield doc
            continue
        items = doc.value if isinstance(doc.value, list) else [doc.value]
        for index, item in enumerate(items, start=1):
            yield item, doc.location or (f"item {index}" if isinstance(doc.value, list) else "")
