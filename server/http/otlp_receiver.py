"""OTLP/HTTP trace receiver: ``POST /v1/traces``, as the OTLP 1.x specification describes it.

Any OpenTelemetry SDK exporter (``opentelemetry-exporter-otlp-proto-http``) or Collector
(``otlphttp`` exporter) can send here. Per the specification:

* bodies are ``application/x-protobuf`` or ``application/json`` (ids in hex), optionally
  ``Content-Encoding: gzip``; any other content type is 415, any other encoding 415;
* the answer is an ``ExportTraceServiceResponse`` in the request's encoding; spans that could not
  be stored (a span without a start time, say) are counted in ``partial_success`` with the reason,
  and the rest of the request is stored (the sender must not retry a partial success);
* an undecodable body is 400 and stores nothing; a body over the size limit (compressed or not)
  is 413; when the write queue is full, or the store is busy, 503 with ``Retry-After`` (exporters
  retry 503; the Python exporter does not retry 429, so 429 is never used);
* 200 is sent only after the spans are committed to the store (``group_commit``).

Spans are upserted by the store's writer (DuckDB's ``writer.py`` + ``merge.py``, ClickHouse's
``writer.py`` + ``merge.py``), so on either engine a retried request stores nothing twice and a
trace whose spans come in several requests ends whole, its row re-derived from all its spans.
"""

from __future__ import annotations

import json
import logging
import zlib
from pathlib import Path
from typing import Any

import anyio
from google.protobuf.json_format import MessageToDict, MessageToJson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                       ExportTraceServiceResponse)
from starlette.types import ASGIApp, Receive, Scope, Send

from server.http.group_commit import Backpressure, GroupCommitter
from server.ingestion.detect import Document
from server.ingestion.otlp import read_otlp_documents
from tools.errors import IngestError, StoreBusyError
from tools.models import Trace
from tools.ports import TraceStore

log = logging.getLogger("tracesieve.otlp")

__all__ = ["DEFAULT_MAX_BODY_BYTES", "OtlpReceiver", "with_otlp_receiver"]

PATH = "/v1/traces"
#: Largest request body accepted, after gzip is undone (the Collector's default is 20 MiB).
DEFAULT_MAX_BODY_BYTES = 32 * 2**20
RETRY_AFTER_S = 2
_SOURCE = Path("otlp-http")
_PROTOBUF, _JSON = "application/x-protobuf", "application/json"


class _Refused(Exception):
    def __init__(self, status: int, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class OtlpReceiver:
    """The ASGI app answering ``POST /v1/traces`` (see the module docstring)."""

    def __init__(self, store: TraceStore, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 max_pending_spans: int = 200_000, release_every_s: float = 1.0) -> None:
        self.max_body_bytes = max_body_bytes
        self.committer = GroupCommitter(store, max_pending_spans=max_pending_spans, release_every_s=release_every_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, self.committer)
            return
        if scope["type"] != "http":
            return
        kind = _JSON  # until the request says otherwise, errors are readable JSON
        try:
            if scope["path"].rstrip("/") != PATH:
                raise _Refused(404, f"Not found. OTLP traces are received at POST {PATH}.")
            if scope["method"] != "POST":
                raise _Refused(405, f"Use POST {PATH} with an OTLP ExportTraceServiceRequest body.")
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
            kind = _content_kind(headers.get("content-type", ""))
            encoding = headers.get("content-encoding", "identity").strip().lower() or "identity"
            if encoding not in ("gzip", "identity"):
                raise _Refused(415, f"Content-Encoding '{encoding}' is not supported; send gzip or no encoding.")
            body = await _read_body(receive, headers, self.max_body_bytes)
            if encoding == "gzip":
                body = _gunzip(body, self.max_body_bytes)
            traces, rejected, reasons = await anyio.to_thread.run_sync(_decode, body, kind)
            if traces:
                await self.committer.submit(traces)
            await _answer(send, 200, kind, _response(rejected, reasons))
        except _Refused as refused:
            await _answer(send, refused.status, kind, _status(str(refused)), retry_after=refused.retry_after)
        except Backpressure as busy:
            await _answer(send, 503, kind, _status(f"The receiver is busy ({busy}); retry later."),
                          retry_after=RETRY_AFTER_S)
        except StoreBusyError as busy:
            await _answer(send, 503, kind, _status(f"The trace store is busy: {busy}"), retry_after=RETRY_AFTER_S)


async def _lifespan(receive: Receive, send: Send, committer: GroupCommitter) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await committer.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


def _content_kind(content_type: str) -> str:
    kind = content_type.split(";")[0].strip().lower()
    if kind not in (_PROTOBUF, _JSON):
        raise _Refused(415, f"Content-Type '{kind or '(none)'}' is not supported; send {_PROTOBUF} or {_JSON} "
                            "(OTLP/HTTP).")
    return kind


async def _read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _Refused(413, f"The body ({declared} bytes) is over the {limit}-byte limit; send smaller batches "
                            "(BatchSpanProcessor max_export_batch_size) or raise --max-body-mb.")
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _Refused(413, f"The body is over the {limit}-byte limit; send smaller batches or raise --max-body-mb.")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _gunzip(body: bytes, limit: int) -> bytes:
    """Undo gzip without ever holding more than ``limit`` bytes (a small body can inflate hugely)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise _Refused(400, f"The body is not valid gzip ({error}); compress it with gzip or drop "
                            "Content-Encoding.") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise _Refused(413, f"The body is over the {limit}-byte limit once decompressed; send smaller batches.")
    return data


def _decode(body: bytes, kind: str) -> tuple[list[Trace], int, list[str]]:
    """The request's traces, the number of spans that cannot be stored, and why."""
    if kind == _PROTOBUF:
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except DecodeError as error:
            raise _Refused(400, f"The body is not an OTLP ExportTraceServiceRequest in protobuf ({error}); "
                                "nothing was stored.") from None
        value: Any = MessageToDict(request)
    else:
        try:
            value = json.loads(body)
        except (UnicodeDecodeError, ValueError) as error:
            raise _Refused(400, f"The body is not JSON ({error}); nothing was stored.") from None
        if not isinstance(value, dict):
            raise _Refused(400, "The body must be a JSON object (an ExportTraceServiceRequest with resourceSpans); "
                                "nothing was stored.")
    if not value.get("resourceSpans", value.get("resource_spans")):
        return [], 0, []
    total = _span_count(value)
    traces: list[Trace] = []
    reasons: list[str] = []
    for item in read_otlp_documents([Document(value, location="request")], _SOURCE):
        if isinstance(item, IngestError):
            where = item.location.removeprefix("request").strip(", ")
            message = str(item).split("): ", 1)[-1]
            reasons.append(f"{where}: {message}" if where else message)
        else:
            traces.append(item)
    rejected = total - sum(len(t.spans) for t in traces)
    if reasons and not traces and rejected == 0:
        raise _Refused(400, f"The request could not be read: {reasons[0]}; nothing was stored.")
    return traces, max(0, rejected), reasons


def _span_count(value: dict) -> int:
    try:
        return sum(len(scope.get("spans") or []) for resource in value.get("resourceSpans", value.get("resource_spans"))
                   for scope in resource.get("scopeSpans", resource.get("scope_spans")) or [])
    except (AttributeError, TypeError):
        raise _Refused(400, "The body is not an ExportTraceServiceRequest (resourceSpans[].scopeSpans[].spans[]); "
                            "nothing was stored.") from None


def _response(rejected: int, reasons: list[str]) -> ExportTraceServiceResponse:
    response = ExportTraceServiceResponse()
    if rejected or reasons:
        response.partial_success.rejected_spans = rejected
        shown = "; ".join(reasons[:5]) + (f" (and {len(reasons) - 5} more)" if len(reasons) > 5 else "")
        response.partial_success.error_message = f"{rejected} span(s) rejected: {shown}"
    return response


def _status(message: str) -> dict[str, Any]:
    """A ``google.rpc.Status``-shaped error body (the spec's error payload), as a dict."""
    return {"message": message}


async def _answer(send: Send, status: int, kind: str, body: ExportTraceServiceResponse | dict[str, Any], *,
                  retry_after: int | None = None) -> None:
    if isinstance(body, dict):  # errors: a google.rpc.Status in the request's encoding
        code = _GRPC_CODES.get(status, 2)
        payload = (_status_protobuf(code, body["message"]) if kind == _PROTOBUF
                   else json.dumps({"code": code, "message": body["message"]}).encode())
    else:
        payload = body.SerializeToString() if kind == _PROTOBUF else MessageToJson(body, indent=None).encode()
    headers = [(b"content-type", kind.encode()), (b"content-length", str(len(payload)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _status_protobuf(code: int, message: str) -> bytes:
    """``google.rpc.Status{code=1, message=2}`` encoded by hand: two fields do not justify a dependency."""
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


#: HTTP status -> google.rpc.Code for error bodies.
_GRPC_CODES = {400: 3, 404: 5, 405: 12, 413: 8, 415: 3, 503: 14}


def with_otlp_receiver(app: ASGIApp, receiver: OtlpReceiver) -> ASGIApp:
    """``app`` (the MCP app) with ``POST /v1/traces`` answered by ``receiver`` on the same host and port."""

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].rstrip("/") == PATH:
            await receiver(scope, receive, send)
        else:
            await app(scope, receive, send)

    return route
