"""Langfuse trace exports: ``{trace, observations}`` with the trace's scores.

Langfuse states most canonical fields outright (``type``, ``model``, ``usageDetails``, ``level``)
and keeps the original OTel attributes in each observation's ``metadata``; the stated fields win
and the attributes fill the gaps (tool names, GenAI operation types for generic ``SPAN``s).
Observations may also sit inside ``trace``; the top-level list is preferred because in real
exports the nested copy has its inputs and outputs stripped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator

from server.ingestion.assemble import (TraceProblem, build_trace, make_span, time_ms, time_ns, trace_or_error,
                                      verdict_and_score)
from server.ingestion.attributes import as_int, as_text, maybe_json
from server.ingestion.usage import Usage, usage_from_details
from server.ingestion.detect import Document, document_items
from tools.errors import IngestError
from tools.models import Label, Score, Span, Trace

__all__ = ["RUN_IDS", "read_langfuse_documents", "trace_from_langfuse"]

#: Score source -> run id for imported judge scores. ANNOTATION scores are human labels instead.
RUN_IDS = {"EVAL": "imported:langfuse-eval", "API": "imported:langfuse-api"}
_ENVIRONMENT_KEYS = ("deployment.environment.name", "deployment.environment")


def read_langfuse_documents(docs: Iterable[Document | IngestError], path: Path) -> Iterator[Trace | IngestError]:
    """Read ``{trace, observations}`` exports (one per file, a list of them, or JSON lines)."""
    source = str(path)
    for entry in document_items(docs):
        if isinstance(entry, IngestError):
            yield entry
            continue
        item, where = entry
        trace = item.get("trace") if isinstance(item, dict) else None
        if not isinstance(trace, dict):
            yield IngestError("not a Langfuse export (no 'trace' object); export the trace with its "
                              "observations as {trace, observations}.", source=source, location=where)
            continue
        location = ", ".join(part for part in (where, f"trace {trace.get('id') or '(missing id)'}") if part)
        yield trace_or_error(source, location, lambda item=item: trace_from_langfuse(item), fmt="Langfuse")


def trace_from_langfuse(doc: dict) -> Trace:
    """Convert one ``{trace, observations}`` export into a Trace."""
    trace = doc["trace"]
    trace_id = trace.get("id")
    if not trace_id:
        raise TraceProblem("the trace has no 'id'; export it from Langfuse with its id")
    observations = doc.get("observations") or trace.get("observations") or []
    spans = [_span(observation) for observation in observations]
    metadata = _json_dict(trace.get("metadata"))
    resource = metadata.pop("resourceAttributes", None)  # stored under "resource", like OTLP's
    resource = resource if isinstance(resource, dict) else {}
    extras = {key: trace[key] for key in ("release", "version") if trace.get(key) is not None}
    tags = trace.get("tags") or []
    labels, scores = _labels_and_scores(trace.get("scores") or doc.get("scores") or [], str(trace_id))
    return build_trace(
        str(trace_id), spans, source="langfuse", name=trace.get("name") or None,
        timestamp_ms=time_ms(trace.get("timestamp")),
        request=as_text(_unwrap(trace.get("input"))), response=as_text(_unwrap(trace.get("output"))),
        session_id=trace.get("sessionId") or None, user_id=trace.get("userId") or None,
        environment=_environment(trace.get("environment"), resource, metadata),
        prompt_version=next((_prompt(o) for o in observations if _prompt(o)), None),
        metadata={**metadata, **({"resource": resource} if resource else {}), **extras},
        tags=({str(tag): "true" for tag in tags} if isinstance(tags, list) else {}),
        labels=labels, scores=scores)


def _span(observation: dict) -> Span:
    name = str(observation.get("name") or "")
    span_id = observation.get("id")
    if not span_id:
        raise TraceProblem(f"observation '{name}' has no id; every Langfuse observation needs one")
    start = time_ns(observation.get("startTime"), unit="ms")
    if start is None:
        raise TraceProblem(f"observation '{name}' ({span_id}) has no startTime; every observation needs one")
    end = time_ns(observation.get("endTime"), unit="ms")
    metadata = _json_dict(observation.get("metadata"))
    attributes = dict(metadata["attributes"]) if isinstance(metadata.get("attributes"), dict) else dict(metadata)
    declared = str(observation.get("type") or "").upper() or None
    for key, value in (("langfuse.observation.type", declared),
                       ("langfuse.observation.level", observation.get("level")),
                       ("langfuse.observation.model.parameters", observation.get("modelParameters") or None),
                       ("langfuse.observation.cost_details", observation.get("costDetails") or None)):
        if value is not None:
            attributes.setdefault(key, value)
    usage = _usage(observation)
    for key, value in (("gen_ai.usage.reasoning.output_tokens", usage.reasoning_tokens),
                       ("gen_ai.usage.cache_read.input_tokens", usage.cached_tokens)):
        if value:  # the parts, under the GenAI names, so every dialect's spans answer one filter
            attributes.setdefault(key, value)
    error = str(observation.get("level") or "").upper() == "ERROR"
    return make_span(
        span_id=str(span_id), parent_span_id=observation.get("parentObservationId") or None, name=name,
        start=start, end=end if end is not None else start, status="ERROR" if error else "UNSET",
        status_message=observation.get("statusMessage") or None, attributes=attributes, events=[],
        declared_type=declared, model=observation.get("model") or None, input_tokens=usage[0], output_tokens=usage[1],
        inputs=as_text(observation.get("input")), outputs=as_text(observation.get("output")))


def _usage(observation: dict) -> Usage:
    """Tokens from ``usageDetails`` (v3, reasoning and cached parts included in the totals) or
    ``usage`` (v2: input/output or promptTokens/completionTokens)."""
    details = observation.get("usageDetails")
    if isinstance(details, dict) and details:
        found = usage_from_details(details)
        if (found.input_tokens, found.output_tokens) != (None, None):
            return found
    for holder in (details, observation.get("usage")):
        if isinstance(holder, dict) and holder:
            found = Usage(as_int(holder.get("input", holder.get("promptTokens"))),
                          as_int(holder.get("output", holder.get("completionTokens"))), None, None)
            if (found.input_tokens, found.output_tokens) != (None, None):
                return found
    return Usage(None, None, None, None)


def _prompt(observation: dict) -> str | None:
    name, version = observation.get("promptName"), observation.get("promptVersion")
    if version is None:
        return None
    return f"{name}@{version}" if name else str(version)


def _environment(stated: Any, resource: dict, metadata: dict) -> str | None:
    """Langfuse writes "default" when nothing was set, so a real value elsewhere beats it."""
    if stated and stated != "default":
        return str(stated)
    found = next((resource[key] for key in _ENVIRONMENT_KEYS if resource.get(key)), None) or metadata.get("environment")
    return str(found) if found else (str(stated) if stated else None)


def _labels_and_scores(items: list, trace_id: str) -> tuple[list[Label], list[Score]]:
    """ANNOTATION scores are human labels; EVAL and API scores are imported judge output."""
    labels: list[Label] = []
    scores: list[Score] = []
    for item in items:
        if not isinstance(item, dict) or not item.get("name"):
            continue
        source = str(item.get("source") or "API").upper()
        categorical = item.get("stringValue") not in (None, "")
        raw = item["stringValue"] if categorical else item.get("value")
        created = time_ms(item.get("timestamp") or item.get("createdAt")) or 0
        numeric = None if categorical else as_number(raw)
        if source == "ANNOTATION":
            labels.append(Label(trace_id=trace_id, criterion=str(item["name"]), value=_text(raw), numeric_value=numeric,
                                reviewer=item.get("authorUserId"), rationale=item.get("comment") or None,
                                created_at_ms=created, source="langfuse"))
            continue
        verdict, score = verdict_and_score(raw)
        if str(item.get("dataType") or "").upper() == "BOOLEAN" and numeric is not None:
            verdict, score = ("pass" if numeric else "fail"), None
        scores.append(Score(trace_id=trace_id, judge=str(item["name"]), verdict=verdict, score=score, value=_text(raw),
                            rationale=item.get("comment") or None, run_id=RUN_IDS.get(source, RUN_IDS["API"]),
                            created_at_ms=created or None))
    return labels, scores


def as_number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _text(value: Any) -> str:
    """Score values as text: integral numbers without a trailing '.0' (1, not 1.0)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return as_text(value) if value is not None else ""


def _json_dict(value: Any) -> dict:
    parsed = maybe_json(value)
    return parsed if isinstance(parsed, dict) else {}


def _unwrap(value: Any) -> Any:
    """Trace input/output often arrive JSON-encoded twice ('"{\\"q\\": 1}"'); peel one layer so
    they read like the observations' values."""
    if isinstance(value, str) and value.startswith('"'):
        inner = maybe_json(value)
        if isinstance(inner, str):
            return inner
    return value
