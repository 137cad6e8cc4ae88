"""MLflow traces as ``Trace.to_json()`` / ``to_dict()`` write them, schema 3.x and 2.x.

One code path for files and for live tracking stores: ``mlflow_live`` hands each trace's
``to_dict()`` to ``trace_from_mlflow_dict``. Quirks handled here (TRACE_FORMATS.md): base64 span
ids (3.x) and ``0x`` hex ids (2.x), every attribute value JSON-encoded a second time, ISO or
epoch-ms request times, and assessments (feedback / expectations) turned into labels and scores.
"""

from __future__ import annotations

import json
from math import isfinite
from pathlib import Path
from typing import Any, Iterable, Iterator

from server.ingestion.assemble import (TraceProblem, build_trace, make_span, normalise_id, root_span, span_status,
                                      time_ms, time_ns, trace_or_error, verdict_and_score)
from server.ingestion.attributes import as_int, as_text, maybe_json
from server.ingestion.detect import Document, document_items
from server.ingestion.json_text import loads
from tools.errors import IngestError
from tools.models import SESSION_LABEL_SOURCE, SESSION_SCORE_RUN_ID, Label, Score, Span, Trace

__all__ = ["IMPORTED_RUN_ID", "labels_and_scores", "read_mlflow_documents", "trace_from_mlflow_dict"]

IMPORTED_RUN_ID = "imported:mlflow"
_STATES = {"OK": "OK", "ERROR": "ERROR", "IN_PROGRESS": "IN_PROGRESS"}
_JUDGE_SOURCES = frozenset({"LLM_JUDGE", "CODE", "AI_JUDGE"})


def read_mlflow_documents(docs: Iterable[Document | IngestError], path: Path) -> Iterator[Trace | IngestError]:
    """Read MLflow traces from parsed documents: one trace, a list of traces, or JSON lines."""
    source = str(path)
    for entry in document_items(docs):
        if isinstance(entry, IngestError):
            yield entry
            continue
        item, where = entry
        info = item.get("info") if isinstance(item, dict) else None
        if not isinstance(info, dict):
            yield IngestError("not an MLflow trace (no 'info' object); export it with mlflow Trace.to_json().",
                              source=source, location=where)
            continue
        label = info.get("trace_id") or info.get("request_id") or "(missing id)"
        location = ", ".join(part for part in (where, f"trace {label}") if part)
        yield trace_or_error(source, location, lambda item=item: trace_from_mlflow_dict(item), fmt="MLflow")


def trace_from_mlflow_dict(doc: dict) -> Trace:
    """Convert one ``{"info": ..., "data": {"spans": [...]}}`` dict (3.x or 2.x) into a Trace."""
    info, data = doc["info"], doc.get("data") or {}
    trace_id = info.get("trace_id") or info.get("request_id")
    if not trace_id:
        raise TraceProblem("the trace info has no trace_id (3.x) or request_id (2.x); export it with its info")
    spans = [_span(raw) for raw in data.get("spans") or []]
    metadata = {str(k): v for k, v in (info.get("trace_metadata") or info.get("request_metadata") or {}).items()}
    tags = {str(k): str(v) for k, v in (info.get("tags") or {}).items()}
    experiment = ((info.get("trace_location") or {}).get("mlflow_experiment") or {}).get("experiment_id") \
        or info.get("experiment_id")
    usage = maybe_json(metadata.get("mlflow.trace.tokenUsage"))
    usage = usage if isinstance(usage, dict) else {}
    root = root_span(spans)
    request_time = info.get("request_time")  # 3.x: ISO string or epoch ms; 2.x: timestamp_ms
    timestamp_ms = time_ms(request_time if request_time is not None else info.get("timestamp_ms"))
    labels, scores = labels_and_scores(info.get("assessments") or [], trace_id, default_time_ms=timestamp_ms)
    return build_trace(
        str(trace_id), spans, source="mlflow", timestamp_ms=timestamp_ms,
        execution_time_ms=_duration_ms(info),
        status=_STATES.get(str(info.get("state") or info.get("status") or "").upper()),
        name=tags.get("mlflow.traceName"),
        request=_first_text(root.inputs if root else None, data.get("request"), metadata.get("mlflow.traceInputs"),
                            info.get("request_preview")),
        response=_first_text(root.outputs if root else None, data.get("response"),
                             metadata.get("mlflow.traceOutputs"), info.get("response_preview")),
        session_id=metadata.get("mlflow.trace.session") or None, user_id=metadata.get("mlflow.trace.user") or None,
        environment=tags.get("environment") or metadata.get("environment") or None,
        prompt_version=_prompt_version(tags, metadata),
        input_tokens=as_int(usage.get("input_tokens")), output_tokens=as_int(usage.get("output_tokens")),
        metadata={**metadata, **({"experiment_id": str(experiment)} if experiment is not None else {}),
                  # TraceInfo.client_request_id, kept where trace.client_request_id filters find it
                  **({"mlflow.clientRequestId": str(info["client_request_id"])}
                     if info.get("client_request_id") else {})},
        tags=tags, labels=labels, scores=scores)


def _span(raw: dict) -> Span:
    """One span, 3.x (``span_id``, ``status{code}``) or 2.x (``context{span_id}``, ``status_code``)."""
    name = str(raw.get("name") or "")
    v2 = "context" in raw
    span_id = normalise_id((raw["context"] or {}).get("span_id") if v2 else raw.get("span_id"))
    if not span_id:
        raise TraceProblem(f"span '{name}' has no span_id; every MLflow span needs one")
    start = time_ns(raw.get("start_time") if v2 else raw.get("start_time_unix_nano"))
    if start is None:
        raise TraceProblem(f"span '{name}' ({span_id}) has no start time; every MLflow span needs one")
    end = time_ns(raw.get("end_time") if v2 else raw.get("end_time_unix_nano"))
    status = raw.get("status") if isinstance(raw.get("status"), dict) else {}
    code = raw.get("status_code") if v2 else status.get("code")
    message = raw.get("status_message") if v2 else status.get("message")
    attributes = {str(key): _decoded(value) for key, value in (raw.get("attributes") or {}).items()}
    events = [{"name": event.get("name", ""),
               "time_unix_nano": time_ns(event.get("timestamp") if v2 else event.get("time_unix_nano")),
               "attributes": {str(k): _decoded(v) for k, v in (event.get("attributes") or {}).items()}}
              for event in raw.get("events") or []]
    parent = normalise_id(raw.get("parent_id") if v2 else raw.get("parent_span_id"))
    return make_span(span_id=span_id, parent_span_id=parent, name=name, start=start,
                     end=end if end is not None else start, status=span_status(code),
                     status_message=message or None, attributes=attributes, events=events)


def _decoded(value: Any) -> Any:
    """MLflow JSON-encodes every attribute value ('"AGENT"', '20', 'null'); undo that once.

    Through ``json_text.loads``: a lone surrogate MLflow wrote as '"\\ud800"' only appears here.
    """
    if isinstance(value, str):
        try:
            return loads(value)
        except ValueError:
            return value
    return value


def labels_and_scores(assessments: list, trace_id: str, *, default_time_ms: int | None
                      ) -> tuple[list[Label], list[Score]]:
    """Human feedback -> Label; judge/code feedback -> Score; expectations -> ``expectation:<name>`` Label.

    Assessments marked ``valid: false`` were overridden by a later one and are skipped. One whose
    metadata names ``mlflow.trace.session`` judges the whole session: its row is marked
    (``SESSION_LABEL_SOURCE`` / ``SESSION_SCORE_RUN_ID``) so filters let it cover the session's traces.
    """
    labels: list[Label] = []
    scores: list[Score] = []
    for item in assessments:
        if not isinstance(item, dict) or item.get("valid") is False:
            continue
        name = str(item.get("assessment_name") or item.get("name") or "")
        source = item.get("source") or {}
        kind = str(source.get("source_type") or "").upper()
        created = time_ms(item.get("create_time") or item.get("create_time_ms")) or default_time_ms or 0
        rationale = item.get("rationale") or None
        session_scoped = "mlflow.trace.session" in (item.get("metadata") or {})
        label_source = SESSION_LABEL_SOURCE if session_scoped else "mlflow"
        if isinstance(item.get("expectation"), dict):
            value = _whole(_expectation_value(item["expectation"]))
            labels.append(Label(trace_id=trace_id, criterion=f"expectation:{name}",
                                value=json.dumps(value, ensure_ascii=False, default=str),
                                reviewer=source.get("source_id"), rationale=rationale, created_at_ms=created,
                                source=label_source))
        elif isinstance(item.get("feedback"), dict):
            value = _whole(item["feedback"].get("value"))
            error = item["feedback"].get("error") or {}
            verdict, score = verdict_and_score(value)
            if kind in _JUDGE_SOURCES or (kind != "HUMAN" and value is None):
                scores.append(Score(trace_id=trace_id, judge=name, verdict=verdict, score=score,
                                    value=None if value is None else as_text(value),
                                    rationale=rationale or error.get("error_message"),
                                    run_id=SESSION_SCORE_RUN_ID if session_scoped else IMPORTED_RUN_ID,
                                    created_at_ms=created))
            elif value is not None:
                numeric = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
                labels.append(Label(trace_id=trace_id, criterion=name, numeric_value=numeric,
                                    value=verdict if verdict != "unknown" else as_text(value) or "",
                                    reviewer=source.get("source_id"), rationale=rationale, created_at_ms=created,
                                    source=label_source))
    return labels, scores


def _whole(value: Any) -> Any:
    """A whole number as an int: ``to_dict()`` goes through protobuf, where every number is a double,
    so MLflow's stored 150 arrives as 150.0; kept as 150 it reads (and filters) as MLflow shows it."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _expectation_value(expectation: dict) -> Any:
    if "value" in expectation:
        return expectation["value"]
    serialized = expectation.get("serialized_value") or {}
    return maybe_json(serialized.get("value"))


def _duration_ms(info: dict) -> int | None:
    for key in ("execution_duration_ms", "execution_time_ms"):
        if info.get(key) is not None:
            return as_int(info[key])
    duration = info.get("execution_duration")  # protobuf Duration JSON: "0.220s"
    if isinstance(duration, str) and duration.endswith("s"):
        try:
            seconds = float(duration[:-1])
        except ValueError:
            return None
        return int(seconds * 1000) if isfinite(seconds * 1000) else None  # "infs" is no duration, like "xs"
    return None


def _prompt_version(tags: dict[str, str], metadata: dict[str, Any]) -> str | None:
    """``prompt_version`` if stated, else the first prompt MLflow linked to the trace as name@version."""
    explicit = tags.get("prompt_version") or metadata.get("prompt_version")
    if explicit:
        return str(explicit)
    linked = maybe_json(tags.get("mlflow.linkedPrompts") or metadata.get("mlflow.linkedPrompts"))
    if isinstance(linked, list) and linked and isinstance(linked[0], dict) and linked[0].get("name"):
        first = linked[0]
        return f"{first['name']}@{first['version']}" if first.get("version") is not None else str(first["name"])
    return None


def _first_text(*values: Any) -> str | None:
    return next((as_text(value) for value in values if value is not None and value != ""), None)
