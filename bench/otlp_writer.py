"""Write canonical ``Trace`` objects as OTLP/JSON lines with GenAI / OpenInference attributes.

This is what an instrumented agent would export, so both systems ingest the same bytes: the
tracesieve OTLP reader maps the attributes back onto types, tokens and I/O, and MLflow's own
OTLP path (``Span.from_otel_proto`` + translation on store) does the same on its side.

Per span type the attributes follow the convention a real instrumentation uses:
AGENT/CHAT_MODEL/TOOL use OTel GenAI (``gen_ai.operation.name``, ``gen_ai.usage.*``,
``gen_ai.input.messages``, ``gen_ai.tool.*``); RETRIEVER and GUARDRAIL have no GenAI operation,
so they use OpenInference (``openinference.span.kind``, ``input.value``). Every span also has
``mlflow.spanType``. Trace tags travel as
``mlflow.traceTag.<key>`` root attributes (MLflow turns them into tags; tracesieve keeps them as
raw attributes and the harness tags the same traces with ``tag_trace``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from tools.models import Span, Trace

#: Traces per OTLP export request (one JSON line).
TRACES_PER_LINE = 100
_STATUS = {"UNSET": 0, "OK": 1, "ERROR": 2}
_KIND_INTERNAL, _KIND_CLIENT = 1, 3
_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def hex_id(trace_id: str) -> str:
    """The 32-hex OTLP trace id of a demo id (``tr-<32 hex>``)."""
    return trace_id.removeprefix("tr-")


def _value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, (list, tuple)):
        return {"arrayValue": {"values": [_value(i) for i in v]}}
    if isinstance(v, Mapping):
        return {"kvlistValue": {"values": _kvs(v)}}
    return {"stringValue": str(v)}


def _kvs(attrs: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in attrs.items() if v is not None]


def span_attributes(span: Span, trace: Trace, tags: Mapping[str, str]) -> dict[str, Any]:
    """The attributes an instrumented agent would export for ``span``."""
    a: dict[str, Any] = {}
    t = span.span_type
    if t == "AGENT":
        a |= {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": span.name,
              "gen_ai.input.messages": span.inputs, "gen_ai.output.messages": span.outputs}
    elif t in ("CHAT_MODEL", "LLM"):
        a |= {"gen_ai.operation.name": "chat" if t == "CHAT_MODEL" else "text_completion",
              "gen_ai.request.model": span.model, "gen_ai.response.model": span.model,
              "gen_ai.usage.input_tokens": span.input_tokens, "gen_ai.usage.output_tokens": span.output_tokens,
              "gen_ai.input.messages": span.inputs, "gen_ai.output.messages": span.outputs}
    elif t == "TOOL":
        a |= {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": span.tool_name or span.name,
              "gen_ai.tool.call.arguments": span.inputs, "gen_ai.tool.call.result": span.outputs}
    else:  # RETRIEVER, GUARDRAIL, ...: OpenInference
        a |= {"openinference.span.kind": t, "input.value": span.inputs, "output.value": span.outputs}
    # MLflow's own key too: its OTLP path fills the ``spans.type`` column (what ``span.type``
    # filters read) only from ``mlflow.spanType``, not from the GenAI/OpenInference translation.
    a["mlflow.spanType"] = t
    a |= span.attributes
    if span.parent_span_id is None:
        a |= {"gen_ai.conversation.id": trace.session_id, "user.id": trace.user_id,
              "llm.prompt_template.version": trace.prompt_version}
        for key, value in tags.items():
            a[f"mlflow.traceTag.{key}"] = value
    if span.status == "ERROR" and span.status_message and "error.type" not in a:
        a["error.type"] = span.status_message.partition(":")[0][:80]
    return a


def _span(span: Span, trace: Trace, tags: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traceId": hex_id(trace.trace_id), "spanId": span.span_id, "name": span.name,
        "kind": _KIND_CLIENT if span.span_type in ("CHAT_MODEL", "LLM") else _KIND_INTERNAL,
        "startTimeUnixNano": str(span.start_time_ns), "endTimeUnixNano": str(span.end_time_ns),
        "attributes": _kvs(span_attributes(span, trace, tags)),
        "status": {"code": _STATUS[span.status], **({"message": span.status_message} if span.status_message else {})},
    }
    if span.parent_span_id:
        out["parentSpanId"] = span.parent_span_id
    if span.events:
        out["events"] = [{"name": e.get("name", ""), "timeUnixNano": str(e.get("time_unix_nano") or span.end_time_ns),
                          "attributes": _kvs(e.get("attributes") or {})} for e in span.events]
    return out


def export_request(traces: Iterable[Trace], tags_of: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """One ``ExportTraceServiceRequest`` (as OTLP/JSON) holding ``traces``, one resource each."""
    resource_spans = []
    for trace in traces:
        tags = tags_of.get(trace.trace_id, {})
        resource_spans.append({
            "resource": {"attributes": _kvs({"service.name": "acme-support-agent",
                                             "deployment.environment.name": trace.environment})},
            "scopeSpans": [{"scope": {"name": "acme.agent", "version": "2.14"},
                            "spans": [_span(s, trace, tags) for s in trace.spans]}],
        })
    return {"resourceSpans": resource_spans}


def write_jsonl(out: TextIO, traces: list[Trace], tags_of: Mapping[str, Mapping[str, str]]) -> int:
    """Write ``traces`` as OTLP/JSON lines of ``TRACES_PER_LINE`` traces; returns the span count."""
    for i in range(0, len(traces), TRACES_PER_LINE):
        out.write(_DUMPS(export_request(traces[i:i + TRACES_PER_LINE], tags_of)))
        out.write("\n")
    return sum(len(t.spans) for t in traces)
